#!/usr/bin/env bash
# Installs the system packages Callgate builds against, when they are missing (Debian/Ubuntu).
# Used by scripts/start and scripts/test; safe to run again.
set -euo pipefail

packages=(libsqlite3-dev libprotobuf-c-dev protobuf-c-compiler pkg-config)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "bootstrap: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
