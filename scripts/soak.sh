#!/usr/bin/env bash
# Soak and fault test: a throwaway PostgreSQL and a release `xiaoer serve` on
# loopback, `xiaoer eval load` for M minutes with every 20th request malformed
# or oversized, PostgreSQL stopped for 20 s midway and started again. Then it
# reports requests served, errors by status and latency, and checks that every
# handoff acknowledged to the load client is in the database.
#   scripts/soak.sh [--minutes M] [--concurrency C]      (defaults: 3 minutes, 8 workers)
# Bounded in time (the load stops itself at M minutes; a watchdog kills it a
# minute later), loopback only, and it removes its cluster and data on exit.
# The load report (report.md, latency.png) goes to reports/soak-<time>/.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=3 concurrency=8 outage_s=20 malformed_every=20
usage() { echo "usage: $0 [--minutes M (1-60)] [--concurrency C (1-64)]" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) minutes=${2:-}; shift 2 || usage ;;
    --concurrency) concurrency=${2:-}; shift 2 || usage ;;
    *) usage ;;
  esac
done
[[ "$minutes" =~ ^[0-9]+$ ]] && [ "$minutes" -ge 1 ] && [ "$minutes" -le 60 ] || usage
[[ "$concurrency" =~ ^[0-9]+$ ]] && [ "$concurrency" -ge 1 ] && [ "$concurrency" -le 64 ] || usage
duration=$((minutes * 60))

scripts/fetch-weights.sh >&2
cargo build --release --bin xiaoer >&2
xiaoer=$(pwd)/target/release/xiaoer
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
psql=${bin:+$bin/}psql

work=$(mktemp -d /tmp/xiaoer-soak.XXXXXX)
pgdir=$(mktemp -d /tmp/xiaoer-soak-pg.XXXXXX) # its own folder: the cluster may run as the postgres user
report=reports/soak-$(date +%Y%m%d-%H%M%S)
pgport=$((20000 + RANDOM % 20000))
port=$((40000 + RANDOM % 20000))
server=''
cleanup() {
  [ -n "$server" ] && kill -TERM "$server" 2>/dev/null && wait "$server" 2>/dev/null
  scripts/pg-test-cluster.sh stop "$pgdir" >/dev/null 2>&1 || true
  rm -rf "$work" "$pgdir"
}
trap cleanup EXIT

url=$(scripts/pg-test-cluster.sh start "$pgdir" "$pgport")
endpoint="http://127.0.0.1:$port"
"$xiaoer" serve --addr "127.0.0.1:$port" --metrics-addr "127.0.0.1:$((port + 1))" \
  --database-url "$url" --data-dir "$work/data" --log-format json 2>"$work/server.log" &
server=$!
for _ in $(seq 120); do
  "$xiaoer" health --endpoint "$endpoint" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
  sleep 1
done
"$xiaoer" health --endpoint "$endpoint" >/dev/null

echo "soak: ${minutes} min, $concurrency workers, every ${malformed_every}th request malformed, PostgreSQL down ${outage_s} s at mid-run" >&2
timeout $((duration + 60)) "$xiaoer" eval load --endpoint "$endpoint" --concurrency "$concurrency" \
  --duration "$duration" --malformed-every "$malformed_every" --ack-log "$work/acks.txt" --out "$report" \
  >"$work/load.txt" &
load=$!
sleep $((duration / 2 - outage_s / 2))
echo "soak: stopping PostgreSQL at $(date +%T)" >&2
scripts/pg-test-cluster.sh stop "$pgdir" 2>/dev/null
sleep "$outage_s"
scripts/pg-test-cluster.sh start "$pgdir" "$pgport" >/dev/null 2>&1
echo "soak: PostgreSQL back at $(date +%T)" >&2
wait "$load"
cat "$work/load.txt"

# The server must still be up and serving, without having been restarted.
kill -0 "$server" || { echo "FAIL: the server died" >&2; exit 1; }
"$xiaoer" health --endpoint "$endpoint" >/dev/null || { echo "FAIL: the server is not SERVING" >&2; exit 1; }
outage_logs=$(grep -c 'answering from the knowledge base only' "$work/server.log" || true)
recovery_logs=$(grep -c 'database reachable again' "$work/server.log" || true)
echo "server: still serving; logged the outage ${outage_logs}x and the recovery ${recovery_logs}x"

# Every handoff acknowledged to a client must be in the database.
awk '$1 == "handoff" { print $2 }' "$work/acks.txt" | sort -u >"$work/acked"
"$psql" "$url" -At -c "SELECT id FROM handoffs" | sort -u >"$work/stored"
acked=$(wc -l <"$work/acked")
missing=$(comm -23 "$work/acked" "$work/stored" | wc -l)
echo "handoffs: $acked acknowledged to clients, $missing of them missing from the database"
grep -q 'not refused as expected' "$work/load.txt" && ! grep -q ', 0 not refused as expected' "$work/load.txt" \
  && { echo "FAIL: some malformed requests were not refused as expected" >&2; exit 1; }
[ "$missing" -eq 0 ] || { echo "FAIL: acknowledged handoffs were lost" >&2; exit 1; }
[ "$acked" -gt 0 ] || { echo "FAIL: no handoff was acknowledged, nothing was checked" >&2; exit 1; }
echo "soak: PASS (report in $report)"
