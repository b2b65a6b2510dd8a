#!/usr/bin/env bash
# Prints the module's export list for emcc (_name,_name,...): every
# QE_EXPORT declaration in csrc/**/*.h, read by scripts/gen-c-api.js, the
# same reader that writes js/c-api.ts.
set -euo pipefail
cd "$(dirname "$0")/.."
exec node scripts/gen-c-api.js --emcc-exports
