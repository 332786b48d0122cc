#!/usr/bin/env bash
# Throughput with 1, 2 and 3 replicas on one throwaway PostgreSQL: release
# `xiaoer serve` processes on loopback, `xiaoer eval load` spreading its
# workers over them. On one machine the replicas share its cores (each gets
# cores/N inference and kernel threads, at least one), so this measures what
# replication costs on the same hardware, not what more machines would add.
#   scripts/replicas-load.sh [--seconds S] [--concurrency C] [--replicas "1 2 3"]
# Prints one line per replica count; load reports go to reports/replicas-<time>/N/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=30 concurrency=16 counts="1 2 3"
usage() { echo "usage: $0 [--seconds S (5-600)] [--concurrency C (1-64)] [--replicas \"1 2 3\"]" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=${2:-}; shift 2 || usage ;;
    --concurrency) concurrency=${2:-}; shift 2 || usage ;;
    --replicas) counts=${2:-}; shift 2 || usage ;;
    *) usage ;;
  esac
done
[[ "$seconds" =~ ^[0-9]+$ ]] && [ "$seconds" -ge 5 ] && [ "$seconds" -le 600 ] || usage
[[ "$concurrency" =~ ^[0-9]+$ ]] && [ "$concurrency" -ge 1 ] && [ "$concurrency" -le 64 ] || usage
for n in $counts; do [[ "$n" =~ ^[1-9]$ ]] || usage; done

scripts/fetch-weights.sh >&2
cargo build --release --bin xiaoer >&2
xiaoer=$(pwd)/target/release/xiaoer
work=$(mktemp -d /tmp/xiaoer-replicas.XXXXXX)
pgdir=$(mktemp -d /tmp/xiaoer-replicas-pg.XXXXXX)
report=reports/replicas-$(date +%Y%m%d-%H%M%S)
pids=()
stop_replicas() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
}
cleanup() {
  stop_replicas
  scripts/pg-test-cluster.sh stop "$pgdir" >/dev/null 2>&1 || true
  rm -rf "$work" "$pgdir"
}
trap cleanup EXIT
url=$(scripts/pg-test-cluster.sh start "$pgdir" $((20000 + RANDOM % 20000)))

echo "replicas  replies/s  p50 ms  p99 ms  errors   ($concurrency workers, ${seconds} s, $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
for n in $counts; do
  endpoints=()
  threads=$(( $(nproc) / n )); [ "$threads" -ge 1 ] || threads=1
  for i in $(seq "$n"); do
    port=$((40000 + RANDOM % 20000))
    "$xiaoer" serve --addr "127.0.0.1:$port" --metrics-addr "127.0.0.1:$((port + 1))" \
      --database-url "$url" --data-dir "$work/data-$n-$i" --drain-window 0s \
      --inference-threads "$threads" --kernel-threads "$threads" \
      --log-format json 2>"$work/serve-$n-$i.log" &
    pids+=("$!")
    endpoints+=("http://127.0.0.1:$port")
  done
  for e in "${endpoints[@]}"; do
    for _ in $(seq 180); do "$xiaoer" health --endpoint "$e" >/dev/null 2>&1 && break; sleep 1; done
    "$xiaoer" health --endpoint "$e" >/dev/null
  done
  list=$(IFS=,; echo "${endpoints[*]}")
  "$xiaoer" eval load --endpoint "$list" --concurrency "$concurrency" --duration "$seconds" \
    --out "$report/$n" >"$work/load-$n.txt"
  python3 - "$n" "$report/$n/report.json" <<'PY'
import json, sys
n, path = sys.argv[1], sys.argv[2]
r = json.load(open(path))
errors = sum(r["errors_by_code"].values())
print(f"{n:>8}  {r['throughput_rps']:>9.1f}  {r['latency']['p50_ms']:>6.1f}  {r['latency']['p99_ms']:>6.1f}  {errors:>6}")
PY
  stop_replicas
done
