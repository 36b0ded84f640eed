#!/usr/bin/env bash
# The README's test command: sets up what is missing, builds, runs every test with node's test runner.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/node_modules/.bin:$PATH"
# The build uses TypeScript 7 (package typescript-native); typescript 5.9 is there for the linter's API.
npm run -s build
# One test file at a time: the wasm engine already uses every core. Only *.test.js files are
# tests (node 20 would otherwise also run every helper module under a test/ folder).
if [ -n "${TEST_FILES:-}" ]; then files=($TEST_FILES); else mapfile -t files < <(find dist/test -name '*.test.js' | sort); fi
node --test --test-concurrency=1 "${files[@]}"

