#!/usr/bin/env bash
# CI check of test selection, as the original module documents it:
# `npm test -- flash-attention` must exit 0, run only C cases and Jest files
# whose names match, and end with a count line that adds up; a pattern that
# matches nothing must fail. Ends with "N passed, N failed": the selected
# tests it ran, plus this check itself as one test.
set -uo pipefail
cd "$(dirname "$0")/.."

problems=()
out=$(mktemp)
trap 'rm -f "$out"' EXIT

echo "== npm test -- flash-attention"
npm test --silent -- flash-attention 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
last=$(tail -n 1 "$out")
[ "$rc" -eq 0 ] || problems+=("npm test -- flash-attention exited with $rc")
sel_passed=0
sel_failed=0
if [[ "$last" =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
  sel_passed=${BASH_REMATCH[1]}
  sel_failed=${BASH_REMATCH[2]}
  [ "$sel_passed" -gt 0 ] || problems+=("no test ran")
  [ "$sel_failed" -eq 0 ] || problems+=("$sel_failed selected tests failed")
else
  problems+=("the last line is not 'N passed, N failed': $last")
fi
# The C cases run: each "ok"/"FAIL" line names suite/case.
c_run=$(grep -cE '^  (ok  |FAIL) ' "$out")
c_other=$(grep -E '^  (ok  |FAIL) ' "$out" | grep -vic 'flash-attention')
[ "$c_run" -gt 0 ] || problems+=("no C case matched flash-attention")
[ "$c_other" -eq 0 ] || problems+=("$c_other C cases ran that do not match flash-attention")
# The Jest files run: one PASS/FAIL line each; its "Tests:" line counts them.
j_files=$(grep -cE '^(PASS|FAIL) ' "$out")
j_other=$(grep -E '^(PASS|FAIL) ' "$out" | grep -vc 'flash-attention')
[ "$j_files" -gt 0 ] || problems+=("no Jest file matched flash-attention")
[ "$j_other" -eq 0 ] || problems+=("$j_other Jest files ran that do not match flash-attention")
j_tests=$(grep -E '^Tests: ' "$out" | sed -E 's/.* ([0-9]+) total.*/\1/' | tail -n 1)
if [ -z "$j_tests" ] || [ $((c_run + j_tests)) -ne $((sel_passed + sel_failed)) ]; then
  problems+=("the count line ($last) is not the C cases ($c_run) plus the Jest tests (${j_tests:-none})")
fi

echo "== npm test -- no-suite-is-named-like-this (must fail)"
npm test --silent -- no-suite-is-named-like-this > "$out" 2>&1
rc=$?
tail -n 2 "$out"
[ "$rc" -ne 0 ] || problems+=("a pattern matching nothing exited 0")
grep -q '^0 passed, 1 failed$' "$out" || problems+=("a pattern matching nothing did not end with '0 passed, 1 failed'")

if [ ${#problems[@]} -eq 0 ]; then
  echo "test selection check: ok"
  echo "$((sel_passed + 1)) passed, $sel_failed failed"
  exit 0
fi
printf 'test selection check: %s\n' "${problems[@]}" >&2
echo "$sel_passed passed, $((sel_failed + 1)) failed"
exit 1
