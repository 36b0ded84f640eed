#!/usr/bin/env bash
# The README's test command: sets up what is missing, builds, runs every test with node's test runner.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/node_modules/.bin:$PATH"
rm -rf dist && npx tsc -p tsconfig.json
# One test file at a time: the wasm engine already uses every core.
node --test --test-concurrency=1 ${TEST_FILES:-dist/test/}
