#!/usr/bin/env bash
# Builds aLLM and runs the server. Without models it serves a generated demo model.
# Arguments go to `allm serve` (see `build/bin/allm serve --help`).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/build.sh
exec "${ALLM_BUILD_DIR:-build}/bin/allm" serve "$@"
