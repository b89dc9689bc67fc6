#!/usr/bin/env bash
# The visualisation tests' virtual X screen (Xvfb) and its screenshot and window-listing tools
# (xwd, xwininfo), from Debian's packages; does nothing when they are installed.
set -euo pipefail
if command -v Xvfb >/dev/null && command -v xwd >/dev/null && command -v xwininfo >/dev/null; then
    exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    xvfb x11-apps x11-utils >/dev/null
