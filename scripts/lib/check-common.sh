# shellcheck shell=bash
# The start that scripts/check-deploy.sh and scripts/check-monitoring.sh
# share: the same arguments and the same way of installing a missing Debian
# package. It was written twice; sourced from here, the checkers cannot drift.
#
# The checker sets `here` (the repository) first, then calls
#   check_args NAME "$@"    NAME (check-deploy, ...) prefixes its messages
# which sets `root`, the tree to check: the repository, or DIR with --root DIR.
# --help prints the checker's header comment, from line 2 up to the first
# bare `#` line.

# Debian packages, installed quietly; the log goes to stderr.
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
apt_install() { # PACKAGE...
  echo "$checker: installing $* from Debian packages..." >&2
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >&2
}

# (`here` comes from the checker, and `root` is for it.)
# shellcheck disable=SC2154,SC2034
check_args() { # NAME ARG...
  checker=$1
  shift
  root=$here
  while [ $# -gt 0 ]; do
    case "$1" in
      --root) root=$(cd "$2" && pwd); shift 2 ;;
      -h|--help) sed -n '/^#$/q; 2,$p' "$0"; exit 0 ;;
      *) echo "$checker: unknown argument $1" >&2; exit 2 ;;
    esac
  done
}
