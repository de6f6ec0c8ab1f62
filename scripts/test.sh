#!/usr/bin/env bash
# Builds aLLM and runs every test: GoogleTest unit tests, then the integration and end-to-end
# tests (Node, the official OpenAI SDK) against the real server on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/build.sh
BUILD_DIR="${ALLM_BUILD_DIR:-build}"

# Unit, integration and end-to-end tests, and a bounded load test (README "Reliability tests"
# has the longer runs).
scripts/run-suite.sh "$BUILD_DIR" --duration 30 --requests 3000

echo "== fuzzing (10 s per target)"
scripts/fuzz.sh "${ALLM_FUZZ_SECONDS:-10}"

# About 10 minutes on two cores (its own build dir; the dependencies come from ccache).
echo "== sanitizers (ASan + UBSan)"
scripts/test-sanitize.sh
echo "== all tests passed"
