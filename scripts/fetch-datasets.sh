#!/usr/bin/env bash
# Fetches the public data sets xiaoer trains and benchmarks on, from their
# original public sources at pinned commits, converts them to the JSONL the
# loaders read (scripts/datasets/<name>.py, Python stdlib only) and checks every
# converted file against scripts/datasets/pins.sha256. Each set lands in
# DIR/<name>/ with a SOURCE.md (origin, commit, URLs, licence, conversion).
# Idempotent: a set whose files all match their pins is left alone ("ok").
# Nothing here runs at serve time. Details: docs/datasets.md
#
#   scripts/fetch-datasets.sh [--dir DIR] [NAME...]      download + convert + check
#   scripts/fetch-datasets.sh --from SRC [--dir DIR] [NAME...]
#                                  copy an already converted tree (e.g. ../shared/datasets)
#                                  after checking its pins: no network (CI, air-gapped)
#   scripts/fetch-datasets.sh --check [--dir DIR] [NAME...]   verify only, change nothing
#   scripts/fetch-datasets.sh --list                     known sets
#
# Options: --timeout SECS (connect timeout, default 20), --retries N (default 3),
# --mirror URL (replaces https://raw.githubusercontent.com, for a GitHub raw mirror).
# DIR defaults to $XIAOER_DATASETS_DIR, else datasets/ at the repository root.
# XIAOER_DATASETS_PINS: another pins file instead of scripts/datasets/pins.sha256
# (same "sha256  name/file" format; its names are the known sets). For tests only:
# scripts/datasets/tests/ pin the conversions of small fixture originals with it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
conv="$root/scripts/datasets"
pins="${XIAOER_DATASETS_PINS:-$conv/pins.sha256}"
export PYTHONDONTWRITEBYTECODE=1

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

dest="${XIAOER_DATASETS_DIR:-$root/datasets}"
from=""
mode=fetch
timeout=20
retries=3
maxtime=900
mirror="${XIAOER_DATASETS_MIRROR:-}"
names=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dest="${2:?--dir needs a folder}"; shift 2 ;;
    --dir=*) dest="${1#--dir=}"; shift ;;
    --from) from="${2:?--from needs a folder}"; mode=copy; shift 2 ;;
    --from=*) from="${1#--from=}"; mode=copy; shift ;;
    --check) mode=check; shift ;;
    --timeout) timeout="${2:?--timeout needs seconds}"; shift 2 ;;
    --retries) retries="${2:?--retries needs a number}"; shift 2 ;;
    --mirror) mirror="${2:?--mirror needs a URL}"; shift 2 ;;
    --list) mode=list; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "fetch-datasets: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) names+=("$1"); shift ;;
  esac
done

if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 6))'; then
  echo "fetch-datasets: needs python3 (3.6 or newer) for the converters in scripts/datasets/" >&2
  exit 2
fi
if [ ! -f "$pins" ]; then
  echo "fetch-datasets: pins file $pins not found (XIAOER_DATASETS_PINS?)" >&2
  exit 2
fi
pins=$(cd "$(dirname "$pins")" && pwd)/$(basename "$pins")
pins_name=${pins#"$root"/}   # as the messages show it
if command -v sha256sum >/dev/null 2>&1; then
  sha() { sha256sum "$1" | cut -d' ' -f1; }
elif command -v shasum >/dev/null 2>&1; then
  sha() { shasum -a 256 "$1" | cut -d' ' -f1; }
else
  echo "fetch-datasets: needs sha256sum or shasum" >&2; exit 2
fi

known=()
while IFS= read -r n; do known+=("$n"); done < <(awk '{ split($2, p, "/"); print p[1] }' "$pins" | sort -u)
if [ "$mode" = list ]; then
  for n in "${known[@]}"; do printf '%-34s %s\n' "$n" "$(sed -n 's/^- Origin repository: //p' "$conv/$n.source.md" | head -1)"; done
  exit 0
fi
if [ ${#names[@]} -eq 0 ]; then names=("${known[@]}"); fi
for n in "${names[@]}"; do
  ok=0
  for k in "${known[@]}"; do [ "$n" = "$k" ] && ok=1; done
  if [ $ok = 0 ]; then
    echo "fetch-datasets: unknown data set '$n'; known sets: ${known[*]}" >&2
    exit 2
  fi
done
if [ "$mode" = copy ]; then
  [ -d "$from" ] || { echo "fetch-datasets: --from $from: no such folder" >&2; exit 2; }
  from=$(cd "$from" && pwd)
fi

# pinned files of a set: "sha file" lines
pinned() { awk -v n="$1" '{ i = index($2, "/"); if (substr($2, 1, i - 1) == n) print $1, substr($2, i + 1) }' "$pins"; }

# check DIR/name against the pins; prints one line per bad file; status 1 if any
check_dir() { # dir name
  local dir="$1" name="$2" want file got bad=0
  while read -r want file; do
    if [ ! -f "$dir/$file" ]; then
      echo "$file: missing"; bad=1
    else
      got=$(sha "$dir/$file")
      if [ "$got" != "$want" ]; then echo "$file: sha256 $got, pinned $want"; bad=1; fi
    fi
  done < <(pinned "$name")
  return $bad
}

# writable by its mode bits too (root passes -w even on a read-only tree such as ../shared/datasets)
writable() { [ -w "$1" ] && [ -n "$(find "$1" -maxdepth 0 -perm -u+w 2>/dev/null)" ]; }

# SOURCE.md of a set: written when missing, or rewritten when it is ours and differs
# (keeps reruns change-free; a SOURCE.md written by someone else is left alone)
marker="## Download and check (scripts/fetch-datasets.sh)"
write_source() { # name dir
  local tmp text
  writable "$2" || return 1
  if [ -f "$2/SOURCE.md" ] && ! grep -qxF "$marker" "$2/SOURCE.md"; then return 1; fi
  text=$(python3 "$conv/$1.py" provenance "$pins") || return 1
  # compared before any file is created: an unchanged set keeps even its folder's mtime
  if [ -f "$2/SOURCE.md" ] && printf '%s\n' "$text" | cmp -s - "$2/SOURCE.md"; then return 1; fi
  tmp=$(mktemp "$2/.SOURCE.md.XXXXXX")
  printf '%s\n' "$text" > "$tmp"
  chmod 644 "$tmp"; mv -f "$tmp" "$2/SOURCE.md"
}

work=""
cleanup() { [ -z "$work" ] || rm -rf "$work"; }
trap cleanup EXIT

failed=()
fail() { # name, headline, then blocks of lines (each may hold several lines)
  local name="$1" block; shift
  {
    echo "error: $name: $1"; shift
    for block in "$@"; do printf '%s\n' "$block" | sed 's/^/  /'; done
  } >&2
  failed+=("$name")
}

what_to_do_network() { # name
  echo "what to do: check the network and any proxy (curl honours https_proxy/HTTPS_PROXY; try the URL in a browser),"
  echo "  or pass --mirror URL for a mirror of raw.githubusercontent.com,"
  echo "  or copy the converted set from a machine that has it (e.g. a checkout with ../shared/datasets):"
  echo "  scripts/fetch-datasets.sh --from /path/to/datasets $1"
}

originals() { python3 "$conv/$1.py" urls ${mirror:+--mirror "$mirror"} | cut -f2 | sed 's/^/  /'; }

fetch_one() { # name -> fills $work/out from the origin
  local name="$1" rel url log
  mkdir -p "$work/src" "$work/out"
  while IFS=$'\t' read -r rel url; do
    mkdir -p "$(dirname "$work/src/$rel")"
    echo "  get $url"
    if ! log=$(curl --fail --silent --show-error --location \
                    --connect-timeout "$timeout" --max-time "$maxtime" \
                    --retry "$retries" --retry-delay 2 --retry-connrefused \
                    -o "$work/src/$rel" "$url" 2>&1); then
      local hint="nothing was changed in $dest/$name"
      case "$log" in
        *"returned error"*) hint="$hint; the server answered with an HTTP error: the file may have moved at the origin, or a proxy refused it" ;;
      esac
      fail "$name" "download failed: $url" "${log:-curl failed}" "$hint" "$(what_to_do_network "$name")"
      return 1
    fi
  done < <(python3 "$conv/$name.py" urls ${mirror:+--mirror "$mirror"})
  if ! log=$(python3 "$conv/$name.py" convert "$work/src" "$work/out" 2>&1); then
    fail "$name" "conversion of the downloaded originals failed" "$log" \
      "the download is not the pinned original (a proxy or captive-portal page, a Git LFS pointer, a moved file?)" \
      "originals:" "$(originals "$name")" \
      "what to do: retry; check those URLs in a browser; or copy the converted set with: scripts/fetch-datasets.sh --from /path/to/datasets $name"
    return 1
  fi
  printf '%s\n' "$log" | sed 's/^/  /'
  local bad
  if ! bad=$(check_dir "$work/out" "$name"); then
    fail "$name" "converted files do not match $pins_name" "$bad" \
      "originals:" "$(originals "$name")" \
      "nothing was installed into $dest/$name" \
      "what to do: the origin changed or the download was altered; do not use these files. Copy a checked set from a machine" \
      "  that has one (scripts/fetch-datasets.sh --from /path/to/datasets $name), or report it (issue #20) if the pinned origin itself changed."
    return 1
  fi
}

copy_one() { # name -> fills $work/out from $from/name after checking pins
  local name="$1" bad want file
  if ! bad=$(check_dir "$from/$name" "$name"); then
    fail "$name" "$from/$name does not match $pins_name" "$(printf '%s\n' "$bad" | sed "s|^|$from/$name/|")" \
      "nothing was copied into $dest/$name" \
      "what to do: that copy is not the pinned data (edited, truncated or another version). Take it from a machine whose copy" \
      "  passes 'scripts/fetch-datasets.sh --check --dir DIR $name', or fetch it from the origin (run without --from)."
    return 1
  fi
  mkdir -p "$work/out"
  while read -r want file; do cp "$from/$name/$file" "$work/out/$file"; chmod 644 "$work/out/$file"; done < <(pinned "$name")
}

if [ "$mode" = check ]; then
  for name in "${names[@]}"; do
    if bad=$(check_dir "$dest/$name" "$name"); then
      echo "ok $name"
    else
      fail "$name" "$dest/$name does not match $pins_name" "$bad" \
        "what to do: run scripts/fetch-datasets.sh --dir $dest $name (or --from DIR) to replace it"
    fi
  done
else
  mkdir -p "$dest"
  dest=$(cd "$dest" && pwd)
  if ! writable "$dest"; then
    echo "fetch-datasets: $dest is read-only; fetch into another folder with --dir DIR (or use --check to verify it)" >&2
    exit 2
  fi
  for name in "${names[@]}"; do
    if bad=$(check_dir "$dest/$name" "$name"); then
      if write_source "$name" "$dest/$name"; then echo "ok $name (SOURCE.md written)"; else echo "ok $name"; fi
      continue
    fi
    if [ -d "$dest/$name" ] && ! writable "$dest/$name"; then
      fail "$name" "$dest/$name is read-only; not replacing it" "what to do: fetch into another folder with --dir DIR"
      continue
    fi
    if [ -d "$dest/$name" ]; then
      printf '%s\n' "$bad" | sed "s|^|$name: $dest/$name/|; s|\$| -> replacing it|" >&2
    fi
    echo "$([ "$mode" = copy ] && echo copy || echo fetch) $name"
    work=$(mktemp -d "$dest/.fetch-$name.XXXXXX")
    if { [ "$mode" = copy ] && copy_one "$name"; } || { [ "$mode" = fetch ] && fetch_one "$name"; }; then
      mkdir -p "$dest/$name"
      while read -r want file; do mv -f "$work/out/$file" "$dest/$name/$file"; done < <(pinned "$name")
      write_source "$name" "$dest/$name" || true
      echo "done $name -> $dest/$name"
    fi
    rm -rf "$work"; work=""
  done
fi

if [ ${#failed[@]} -gt 0 ]; then
  echo "fetch-datasets: ${#failed[@]} of ${#names[@]} set(s) failed: ${failed[*]}" >&2
  exit 1
fi
[ "$mode" = check ] || echo "data sets ready in $dest"
