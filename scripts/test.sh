#!/usr/bin/env bash
# Builds aLLM and runs every test: GoogleTest unit tests, then the integration and end-to-end
# tests (Node, the official OpenAI SDK) against the real server on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/build.sh
BUILD_DIR="${ALLM_BUILD_DIR:-build}"

(cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)

# The tokenizer parity test (ctest "tokenizer-parity") compares against answers that the
# JavaScript reference implementations compute now, into $BUILD_DIR/tokenizer-oracle.
echo "== tokenizer reference answers"
node tests/tokenizers/make_oracle.mjs "$BUILD_DIR/tokenizer-oracle"

echo "== unit tests"
ctest --test-dir "$BUILD_DIR" --output-on-failure

echo "== integration and end-to-end tests"
export ALLM_BIN="$PWD/$BUILD_DIR/bin/allm"
export ALLM_FIXTURE_TOOL="$PWD/$BUILD_DIR/bin/allm-make-fixture"
export ALLM_HF_FIXTURE_TOOL="$PWD/$BUILD_DIR/bin/allm-make-hf-fixture"
node --test --test-concurrency=1 tests/integration/ tests/e2e/
echo "== all tests passed"
