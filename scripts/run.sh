#!/usr/bin/env bash
# Quick start, step 1: fetch the encoder weights, build, and start the server
# with embedded defaults (SQLite under ./data, gRPC on 127.0.0.1:50051,
# metrics on 127.0.0.1:9464) and the agents' web console on
# http://127.0.0.1:8080 (XIAOER_CONSOLE_ADDR overrides it). Extra arguments
# go to `xiaoer serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-weights.sh
cargo build --release --bin xiaoer
export XIAOER_CONSOLE_ADDR="${XIAOER_CONSOLE_ADDR:-127.0.0.1:8080}"
exec target/release/xiaoer serve "$@"
