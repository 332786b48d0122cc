#!/usr/bin/env bash
# Installs what the console's browser test needs, from Debian's packages:
# headless Chromium, its WebDriver (chromium-driver) and CJK fonts, so the
# screenshots show Chinese text. Does nothing when they are already there.
set -euo pipefail
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
fc-list 2>/dev/null | grep -qi "noto sans cjk" || need+=(fonts-noto-cjk)
[ ${#need[@]} -eq 0 ] && exit 0
echo "installing ${need[*]} from Debian packages..." >&2
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
$sudo apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
