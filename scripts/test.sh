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

# Bounded reliability runs; README "Reliability tests" has the longer ones.
echo "== load test (30 s)"
node tools/loadtest/loadtest.mjs --serve --duration 30 --requests 3000

echo "== fuzzing (10 s per target)"
scripts/fuzz.sh "${ALLM_FUZZ_SECONDS:-10}"

# About 10 minutes on two cores (its own build dir; the dependencies come from ccache).
echo "== sanitizers (ASan + UBSan)"
scripts/test-sanitize.sh
echo "== all tests passed"
