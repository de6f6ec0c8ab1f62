#!/usr/bin/env bash
# Runs the test suite against an existing build: GoogleTest binaries (ctest), the integration and
# end-to-end tests (Node, official OpenAI SDK) against the real server, a bounded load test, then
# the list of skipped tests (with ALLM_FAIL_ON_SKIP=1, as in CI, a skip that tests/allowed-skips.txt
# does not list fails). Usage: scripts/run-suite.sh BUILD_DIR [load test options]. Used by test.sh
# and test-sanitize.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR="$1"
shift

(cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)

# The tokenizer parity test (ctest "tokenizer-parity") compares against answers that the
# JavaScript reference implementations compute now, into $BUILD_DIR/tokenizer-oracle.
echo "== tokenizer reference answers"
node tests/tokenizers/make_oracle.mjs "$BUILD_DIR/tokenizer-oracle"

# Each test binary writes a report here (tests/CMakeLists.txt), and so does the Node test runner:
# the skipped tests are listed from them at the end.
REPORTS="$BUILD_DIR/test-reports"
rm -rf "$REPORTS"
mkdir -p "$REPORTS"

echo "== unit tests ($BUILD_DIR)"
ctest --test-dir "$BUILD_DIR" --output-on-failure

echo "== integration and end-to-end tests ($BUILD_DIR)"
export ALLM_BIN="$PWD/$BUILD_DIR/bin/allm"
export ALLM_FIXTURE_TOOL="$PWD/$BUILD_DIR/bin/allm-make-fixture"
export ALLM_HF_FIXTURE_TOOL="$PWD/$BUILD_DIR/bin/allm-make-hf-fixture"
node --test --test-concurrency=1 --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$REPORTS/node.tap" tests/integration/ tests/e2e/

echo "== load test ($BUILD_DIR: $*)"
node tools/loadtest/loadtest.mjs --serve "$@"

# A skipped test shows as passed above; in CI (ALLM_FAIL_ON_SKIP=1) it fails the run unless
# tests/allowed-skips.txt lists it.
echo "== skipped tests"
node tests/skipped_tests.mjs "$REPORTS"
