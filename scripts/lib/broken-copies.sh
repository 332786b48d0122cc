# shellcheck shell=bash
# The self-test harness that scripts/check-deploy-tests/run.sh and
# scripts/check-monitoring-tests/run.sh share: each breaks copies of the tree
# one way per case and expects its checker to reject every copy with a given
# message. It was written twice; sourced from here, both runners run, print
# and count their cases the same way.
#
# The runner sets `repo` (the repository) first, then:
#   broken_copies_start NAME WIDTH   checker scripts/NAME.sh; an ok line shows
#                                    WIDTH characters of the checker's message.
#                                    Sets `work`, a folder removed on exit, and
#                                    `pristine`, where the runner puts the copy
#                                    every case starts from.
#   unchanged_case WIDTH             the checker passes on `pristine` (runs alone)
#   case_ NAME EXPECTED SNIPPET      SNIPPET breaks a fresh copy (run inside it,
#                                    `replace` at hand); the checker must fail
#                                    saying EXPECTED. $XIAOER_CHECK_JOBS (default
#                                    2) cases run at a time.
#   broken_copies_finish             prints every case and the summary; exits
#                                    non-zero if any case misbehaved

# (`repo` comes from the runner.)
# shellcheck disable=SC2154
broken_copies_start() { # NAME WIDTH
  checker=$1
  ok_width=$2
  check="$repo/scripts/$checker.sh"
  jobs=${XIAOER_CHECK_JOBS:-2}
  work=$(mktemp -d "/tmp/xiaoer-$checker-tests.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  pristine="$work/pristine"
  n=0
  results="$work/results"
  mkdir -p "$results"
}

# One case, in the background of case_; its verdict is a file in $results.
run_case() {
  local id=$1 name=$2 expected=$3 snippet=$4 dir="$work/case-$1" out="$work/out-$1"
  cp -a "$pristine" "$dir"
  if ! (cd "$dir" && eval "$snippet") >"$out" 2>&1; then
    { echo "FAIL  $name: the change could not be made:"; sed 's/^/      /' "$out"; } >"$results/$id.fail"
  elif "$check" --root "$dir" >"$out" 2>&1; then
    echo "FAIL  $name: the checker passed" >"$results/$id.fail"
  elif ! grep -qF -- "$expected" "$out"; then
    { echo "FAIL  $name: the checker failed without saying \"$expected\":"; sed 's/^/      /' "$out"; } >"$results/$id.fail"
  else
    echo "ok    $name: $(grep -F -m1 -- "$expected" "$out" | cut -c1-"$ok_width")" >"$results/$id.ok"
  fi
  rm -rf "$dir"
}
case_() { # NAME EXPECTED-TEXT SHELL-SNIPPET
  n=$((n + 1))
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  run_case "$(printf %03d $n)" "$@" &
}

# Edits a file by exact replacement; fails loudly if the text is not there.
replace() { # FILE OLD NEW
  python3 - "$@" <<'PY'
import sys
path, old, new = sys.argv[1:4]
text = open(path).read()
if old not in text:
    sys.exit(f"self-test setup: {old!r} not in {path}")
open(path, "w").write(text.replace(old, new, 1))
PY
}

unchanged_case() { # WIDTH
  n=$((n + 1))
  if "$check" --root "$pristine" >"$work/out-000" 2>&1; then
    echo "ok    unchanged tree passes: $(cut -c1-"$1" "$work/out-000")" >"$results/000.ok"
  else
    { echo "FAIL  unchanged tree: the checker failed:"; sed 's/^/      /' "$work/out-000"; } >"$results/000.fail"
  fi
}

broken_copies_finish() {
  wait
  cat "$results"/*
  local failures
  failures=$(find "$results" -name '*.fail' | wc -l)
  if [ "$failures" -gt 0 ] || [ "$(find "$results" -type f | wc -l)" -ne "$n" ]; then
    echo "$checker self-tests: $failures of $n cases misbehaved" >&2
    exit 1
  fi
  echo "$checker self-tests: all $n cases behave (the unchanged tree passes, $((n - 1)) broken copies are rejected with the expected message)"
}
