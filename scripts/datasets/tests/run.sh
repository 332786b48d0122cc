#!/usr/bin/env bash
# Offline tests of the public-data converters (scripts/datasets/<name>.py) and of
# scripts/fetch-datasets.sh (issue #20): small hand-made originals in
# fixtures/<name>/, a local HTTP mirror on 127.0.0.1, no internet. Stdlib only;
# needs python3, bash and curl. Extra arguments go to unittest (e.g. -v, -k 404).
set -euo pipefail
cd "$(dirname "$0")"
export PYTHONDONTWRITEBYTECODE=1
exec python3 -m unittest discover -s . -p 'test_*.py' "$@"
