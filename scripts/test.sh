#!/usr/bin/env bash
# `npm test [-- pattern...]`: what `make test ARGS="pattern..."` does. npm
# appends its extra words to the script, which `make test` would take for
# targets; here they go to scripts/run-tests.sh, which passes them to Jest
# and to the C runner as test selectors.
set -euo pipefail
cd "$(dirname "$0")/.."
make --no-print-directory deps
make --no-print-directory all build/native/qe-ctests
exec bash scripts/run-tests.sh "$@"
