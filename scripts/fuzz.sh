#!/usr/bin/env bash
# Fuzzes every parser that reads outside input (issue #8), with cargo-fuzz and
# libFuzzer: text_pipeline (language, tokenizer, masking, cues, policy),
# kb_article (knowledge-base articles) and eval_case (eval case files).
#
#   scripts/fuzz.sh [--seconds N] [TARGET...]
#
# Runs each target for N seconds (default 30, the CI run) starting from the
# committed seeds in fuzz/seeds/TARGET plus whatever earlier runs kept in
# fuzz/corpus/TARGET (git-ignored). Prints executions per target; exits
# non-zero if any target crashed, with the input saved under fuzz/artifacts/.
# Reproduce one with `RUSTC_BOOTSTRAP=1 cargo fuzz run TARGET fuzz/artifacts/TARGET/crash-…`
# from fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=30
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --seconds=*) seconds="${1#*=}"; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=(text_pipeline kb_article eval_case)

# cargo-fuzz passes unstable rustc flags (-Zsanitizer, sancov passes); only
# the stable toolchain is installed, so allow them for these builds only.
export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --version 0.13.2 --locked
fi
# text_pipeline checks the tokenizer with the real vocabulary.
scripts/fetch-weights.sh

cd fuzz
# --debug-assertions: overflow checks and debug_assert! are bugs worth finding.
# --codegen-units 16: cargo-fuzz's default of one unit per crate makes the cold
# build several times slower (see the profile notes in fuzz/Cargo.toml).
build=(--sanitizer address --debug-assertions --codegen-units 16)
start=$(date +%s)
cargo fuzz build "${build[@]}"
echo "fuzz: build took $(( $(date +%s) - start )) s"

logs=$(mktemp -d /tmp/xiaoer-fuzz.XXXXXX)
failed=()
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target"
  log="$logs/$target.log"
  # -rss_limit_mb: text_pipeline holds the stock tokenizer (~300 MB) beside
  # the lean one, and AddressSanitizer's shadow memory comes on top.
  if cargo fuzz run "${build[@]}" "$target" "corpus/$target" "seeds/$target" -- \
      -max_total_time="$seconds" -max_len=4096 -timeout=25 -rss_limit_mb=4096 \
      -print_final_stats=1 >"$log" 2>&1; then
    status=ok
  else
    status=CRASH
    failed+=("$target")
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
  echo "fuzz: $target: $status, ${execs:-?} executions in ${seconds} s, ${cov:-cov: ?}, corpus $(find "corpus/$target" -type f | wc -l) files"
  if [ "$status" = CRASH ]; then
    tail -n 60 "$log"
  fi
done
rm -rf "$logs"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: crashes in ${failed[*]}; inputs in fuzz/artifacts/" >&2
  exit 1
fi
