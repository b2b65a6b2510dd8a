#!/usr/bin/env bash
# Prints the module's export list for emcc: every QE_EXPORT in csrc/*.h,
# as -sEXPORTED_FUNCTIONS wants it (_name,_name,...).
set -euo pipefail
cd "$(dirname "$0")/.."
grep -h '^QE_EXPORT' csrc/*.h | grep -o 'qe_[a-z0-9_]*[[:space:]]*(' | tr -d '( \t' | sed 's/^/_/' | sort -u | paste -sd, -
