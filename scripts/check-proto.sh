#!/usr/bin/env bash
# Contract guard for proto/ (issue #19): `buf lint` and `buf breaking` on the
# xiaoer.v1 contract.
#   scripts/check-proto.sh          exits non-zero when either check fails
#
# - lint: STANDARD rules, less the ones the fixed names of the released
#   contract break (proto/buf.yaml lists each with its reason).
# - breaking: the working tree's proto/ against proto/released/xiaoer-v1.binpb,
#   a binary buf image of the last released contract, with the FILE rules
#   (proto/buf.yaml says why): additions pass, renames and removals fail.
#
# Refreshing the released image, on a release only (the contract that callers
# now depend on becomes the baseline; never refresh it to make a failing check
# pass):
#   scripts/check-proto.sh                       # must pass first
#   target/tools/buf/node_modules/.bin/buf build proto -o proto/released/xiaoer-v1.binpb
#   git add proto/released/xiaoer-v1.binpb       # and commit with the release
#
# buf comes from the npm package @bufbuild/buf at the version pinned below,
# installed into target/tools/buf (git-ignored through /target); the install is
# skipped when that version is already there. Debian's nodejs and npm are
# installed first when npm is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

BUF_VERSION=1.75.0
tools=target/tools/buf
buf="$tools/node_modules/.bin/buf"
image=proto/released/xiaoer-v1.binpb

installed_version() { [ -x "$buf" ] && "$buf" --version 2>/dev/null || true; }

if [ "$(installed_version)" != "$BUF_VERSION" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "installing nodejs and npm from Debian packages..." >&2
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >&2
    else
      sudo apt-get update -qq >&2 && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >&2
    fi
  fi
  echo "installing buf $BUF_VERSION into $tools..." >&2
  mkdir -p "$tools"
  # --include=optional: the buf binary itself comes in the platform package
  # (@bufbuild/buf-linux-x64, ...) that @bufbuild/buf lists as optional.
  npm install --prefix "$tools" --no-audit --no-fund --loglevel=error \
    --save-exact --include=optional "@bufbuild/buf@$BUF_VERSION" >&2
  got=$(installed_version)
  if [ "$got" != "$BUF_VERSION" ]; then
    echo "check-proto: expected buf $BUF_VERSION in $tools, found '${got:-nothing}'" >&2
    exit 1
  fi
fi

if [ ! -f "$image" ]; then
  echo "check-proto: $image is missing (see the top of $0)" >&2
  exit 1
fi

status=0
echo "check-proto: buf $BUF_VERSION lint proto (STANDARD less the excepts in proto/buf.yaml)"
if "$buf" lint proto; then
  echo "check-proto: lint ok"
else
  echo "check-proto: lint FAILED" >&2
  status=1
fi

echo "check-proto: buf $BUF_VERSION breaking proto --against $image (FILE rules: additions only)"
if "$buf" breaking proto --against "$image"; then
  echo "check-proto: breaking ok"
else
  echo "check-proto: breaking FAILED: the change is not additive against the released contract" >&2
  status=1
fi

exit "$status"
