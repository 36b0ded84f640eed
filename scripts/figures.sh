#!/usr/bin/env bash
# The README's main job: regenerate every figure and the report.
#   npm run figures                               all notebooks/*.ipynb, sorted
#   npm run figures -- notebooks/partB.ipynb      one notebook (the report keeps the others' figures)
# Sets up what is missing, builds, executes the notebooks headless in the tslab kernel, saves
# them under notebooks/executed/, the figures under figures/<notebook>/, and figures/index.html.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/node_modules/.bin:$PATH"
# The build uses TypeScript 7 (package typescript-native); typescript 5.9 is there for the linter's API.
npm run -s build
node dist/scripts/figures.js "$@"
