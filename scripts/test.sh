#!/usr/bin/env bash
# Builds aLLM and runs every test: GoogleTest unit tests, then the integration and end-to-end
# tests (Node, the official OpenAI SDK) against the real server on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/build.sh
BUILD_DIR="${ALLM_BUILD_DIR:-build}"

echo "== unit tests"
ctest --test-dir "$BUILD_DIR" --output-on-failure

echo "== integration and end-to-end tests"
(cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
export ALLM_BIN="$PWD/$BUILD_DIR/bin/allm"
export ALLM_FIXTURE_TOOL="$PWD/$BUILD_DIR/bin/allm-make-fixture"
node --test --test-concurrency=1 tests/integration/ tests/e2e/
echo "== all tests passed"
