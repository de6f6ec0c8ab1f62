#!/usr/bin/env bash
# Installs the Debian 12 packages aLLM builds and tests with (only those missing).
set -euo pipefail

PACKAGES=(cmake g++ ninja-build ccache git pkg-config libgtest-dev libpcre2-dev libsqlite3-dev
          zlib1g-dev ca-certificates
          libssl-dev  # HTTPS to the Hugging Face Hub (allm pull)
          libwebp-dev libpng-dev  # WebP and PNG images uploaded to /v1/images/edits
          libpq-dev postgresql  # the PostgreSQL response store; its tests run a local cluster
          python3-numpy  # the NumPy reference for the diffusion library's numerical checks
          espeak-ng sox libsox-fmt-mp3)  # test speech: espeak-ng speaks, sox writes WAV/MP3/FLAC
PACKAGES+=("$@")  # what a caller needs besides (scripts/fuzz.sh: clang)
command -v node >/dev/null || PACKAGES+=(nodejs)
command -v npm >/dev/null || PACKAGES+=(npm)

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "install-system-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
