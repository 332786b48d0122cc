#!/usr/bin/env bash
# Quick start, step 2: the whole test suite. Checks the contract (buf lint and
# breaking) and formatting, fetches the weights (tests use the real model),
# starts a throwaway PostgreSQL so the store tests run on both backends, runs
# the eval gate against the committed baseline and the external contract
# check, fuzzes, runs clippy, then `cargo test --workspace`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
# A clean run is a one-off build: incremental state would only cost disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
# If a step fails, say how much disk and memory were left: a full disk makes
# rustc and the linker fail in ways that do not name the cause.
trap 'echo "--- test.sh failed at line $LINENO; disk and memory:" >&2; df -h "$root" /tmp >&2; free -m >&2' ERR
echo "disk before the build: $(df -h --output=avail "$root" | tail -1 | tr -d ' ') free"
# Cheap checks first: a contract break or unformatted code fails in seconds.
scripts/check-proto.sh
cargo fmt --all --check
scripts/check-module-cycles.py  # no import circles between a crate's modules (issue #19)
scripts/check-deploy.sh; scripts/check-deploy-tests/run.sh  # Dockerfile, compose, Kubernetes manifests (offline; docs/deployment.md)
scripts/check-monitoring.sh; scripts/check-monitoring-tests/run.sh  # alert rules, Prometheus config, Grafana dashboard vs exported metrics (offline; docs/insights.md)
scripts/fetch-weights.sh
# The console's browser test: headless Chromium and chromium-driver (Debian).
scripts/install-browser.sh
export XIAOER_REQUIRE_BROWSER=1

pgdir=$(mktemp -d /tmp/xiaoer-pg.XXXXXX)
port=$(( 20000 + RANDOM % 20000 ))
cleanup() { scripts/pg-test-cluster.sh stop "$pgdir" >/dev/null 2>&1 || true; rm -rf "$pgdir"; }
trap cleanup EXIT
XIAOER_TEST_POSTGRES_URL=$(scripts/pg-test-cluster.sh start "$pgdir" "$port")
# The database fault test stops and restarts this cluster under traffic.
XIAOER_TEST_POSTGRES_DIR=$pgdir
export XIAOER_TEST_POSTGRES_URL XIAOER_TEST_POSTGRES_DIR

# One build for everything: `cargo test` builds the binary too (its integration
# tests start it), with dev-dependencies' features unified in. A separate
# `cargo build --bin xiaoer` resolves features differently and would compile
# tantivy, candle and the rest a second time.
cargo test --workspace --no-run
xiaoer="$root/target/debug/xiaoer"
"$xiaoer" kb check

# The public data sets' pins hold for the copies this machine carries, and the
# fetcher installs them idempotently (its download path needs the internet).
if [ -d ../shared/datasets ]; then
  dsdir=$(mktemp -d /tmp/xiaoer-datasets.XXXXXX)
  scripts/fetch-datasets.sh --from ../shared/datasets --dir "$dsdir" >/dev/null
  scripts/fetch-datasets.sh --check --dir "$dsdir"
  rm -rf "$dsdir"
fi
# Converters and fetcher offline: fixture originals, a local HTTP mirror, wrong pin, 404.
scripts/datasets/tests/run.sh

# External contract check: an independent Python client built from reflection.
if [ -f ../shared/tools/contract_check.py ]; then
  python3 -m pip install --quiet grpcio grpcio-reflection grpcio-health-checking protobuf
  datadir=$(mktemp -d /tmp/xiaoer-contract.XXXXXX)
  cport=$(( 40000 + RANDOM % 20000 ))
  "$xiaoer" serve --addr "127.0.0.1:$cport" --metrics-addr "127.0.0.1:$((cport + 1))" --data-dir "$datadir" 2>"$datadir/server.log" &
  server=$!
  if python3 ../shared/tools/xclient.py wait "127.0.0.1:$cport" 120 && python3 ../shared/tools/contract_check.py "127.0.0.1:$cport"; then
    kill -TERM "$server"; wait "$server" || true
  else
    kill -TERM "$server" || true; cat "$datadir/server.log" >&2; exit 1
  fi
  rm -rf "$datadir"
fi

# Eval gate: the shipped case suites against the committed baseline.
"$xiaoer" eval cases --out "${XIAOER_REPORT_DIR:-reports/ci-cases}" --baseline evals/baseline/cases.json

# Fuzzing: every parser that reads outside input, 30 s a target (issue #8;
# docs/operations.md "Fuzzing"). Its own workspace and target dir under fuzz/.
scripts/fuzz.sh --seconds "${XIAOER_FUZZ_SECONDS:-30}"

# Lints on every target (tests, benches, examples) with warnings as errors.
cargo clippy --workspace --all-targets -- -D warnings

cargo test --workspace --no-fail-fast
