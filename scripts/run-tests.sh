#!/usr/bin/env bash
# Runs every suite (the native C tests under ASan/UBSan, Jest, then the
# browser tests in headless Chromium) even when
# one fails, and ends with one line that sums them: "N passed, N failed".
#
#   scripts/run-tests.sh [pattern...] [--jest-option...]
#
# Patterns select tests: Jest takes each as a regular expression on test file
# paths (its own rule), the C runner as a case-insensitive regular expression
# on "suite/case" names (a plain word matches as a substring). A runner with
# no match counts 0 and is not a failure; no match anywhere is. Words
# starting with "-" go to Jest only (write Jest options as --opt=value).
set -uo pipefail
cd "$(dirname "$0")/.."

patterns=()
jest_options=()
for arg in "$@"; do
  case "$arg" in
    -*) jest_options+=("$arg") ;;
    *) patterns+=("$arg") ;;
  esac
done
if [ ${#patterns[@]} -gt 0 ]; then
  # Jest exits 1 when no file matches; here that is the C runner's call too.
  jest_options+=(--passWithNoTests)
fi

passed=0
failed=0
status=0

echo "== C tests (native build, SIMDe + AddressSanitizer + UBSan)${patterns[*]:+, matching: ${patterns[*]}}"
c_out=$(mktemp)
./build/native/qe-ctests "${patterns[@]}" 2>&1 | tee "$c_out"
c_rc=${PIPESTATUS[0]}
c_line=$(grep -E '^c-tests: [0-9]+ passed, [0-9]+ failed' "$c_out" | tail -n 1)
if [ -n "$c_line" ]; then
  passed=$((passed + $(echo "$c_line" | sed -E 's/.* ([0-9]+) passed.*/\1/')))
  failed=$((failed + $(echo "$c_line" | sed -E 's/.* ([0-9]+) failed.*/\1/')))
else
  echo "C tests ended without a summary line (crash or bad pattern?)" >&2
  failed=$((failed + 1))
fi
[ "$c_rc" -eq 0 ] || status=1
rm -f "$c_out"

# Each libFuzzer target, briefly; with patterns, the targets whose name
# "fuzz/<target>" matches one.
fuzz_targets=()
for f in test/fuzz/fuzz_*.c; do
  t=${f#test/fuzz/fuzz_}; t=${t%.c}
  if [ ${#patterns[@]} -eq 0 ]; then
    fuzz_targets+=("$t")
  else
    for p in "${patterns[@]}"; do
      if grep -qiE -- "$p" <<< "fuzz/$t" 2>/dev/null; then fuzz_targets+=("$t"); break; fi
    done
  fi
done
if [ ${#fuzz_targets[@]} -gt 0 ]; then
  echo "== Fuzzing (each libFuzzer target ${QE_FUZZ_SECONDS:-10} s from its kept corpus; make fuzz runs them longer)"
  f_out=$(mktemp)
  bash scripts/fuzz.sh "${QE_FUZZ_SECONDS:-10}" "${fuzz_targets[@]}" | tee "$f_out"
  f_rc=${PIPESTATUS[0]}
  f_line=$(grep -E '^fuzz: [0-9]+ passed, [0-9]+ failed' "$f_out" | tail -n 1)
  if [ -n "$f_line" ]; then
    passed=$((passed + $(echo "$f_line" | sed -E 's/.* ([0-9]+) passed.*/\1/')))
    failed=$((failed + $(echo "$f_line" | sed -E 's/.* ([0-9]+) failed.*/\1/')))
  else
    echo "fuzzing ended without a summary line" >&2
    failed=$((failed + 1))
  fi
  [ "$f_rc" -eq 0 ] || status=1
  rm -f "$f_out"
fi

echo "== Jest${patterns[*]:+, test files matching: ${patterns[*]}}"
jest_json=$(mktemp)
# Node 20 validates relaxed SIMD only with a V8 flag, which NODE_OPTIONS may
# not carry: run Jest's own script under it (its workers inherit execArgv),
# so the relaxed-SIMD build is tested too. Node >= 21 has it by default.
node_flags=()
if [ "$(node -p 'process.versions.node.split(".")[0]')" = "20" ]; then
  node_flags+=(--experimental-wasm-relaxed-simd)
fi
node "${node_flags[@]}" node_modules/jest/bin/jest.js --ci --json --outputFile="$jest_json" \
  "${jest_options[@]}" "${patterns[@]}"
j_rc=$?
counts=""
if [ -s "$jest_json" ]; then
  counts=$(node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    // Suites that failed to run (syntax errors, crashes) count as failures too.
    const broken = r.testResults.filter(t => t.status === "failed" && t.assertionResults.length === 0).length;
    console.log(r.numPassedTests, r.numFailedTests + broken);
  ' "$jest_json") || counts=""
fi
if [ -n "$counts" ]; then
  read -r jp jf <<< "$counts"
  passed=$((passed + jp))
  failed=$((failed + jf))
else
  echo "Jest wrote no readable results" >&2
  failed=$((failed + 1))
fi
[ "$j_rc" -eq 0 ] || status=1
rm -f "$jest_json"

# The browser tests run with no pattern, or when a pattern matches "browser".
run_browser=1
if [ ${#patterns[@]} -gt 0 ]; then
  run_browser=0
  for p in "${patterns[@]}"; do
    if echo "browser" | grep -qiE -- "$p"; then run_browser=1; fi
  done
fi
if [ "$run_browser" -eq 1 ]; then
  echo "== Browser tests (headless Chromium: a plain page, esbuild, Vite build and dev, webpack 5; the report page)"
  b_out=$(mktemp)
  node test/browser/run.cjs 2>&1 | tee "$b_out"
  b_rc=${PIPESTATUS[0]}
  b_line=$(grep -E '^browser-tests: [0-9]+ passed, [0-9]+ failed' "$b_out" | tail -n 1)
  if [ -n "$b_line" ]; then
    passed=$((passed + $(echo "$b_line" | sed -E 's/.* ([0-9]+) passed.*/\1/')))
    failed=$((failed + $(echo "$b_line" | sed -E 's/.* ([0-9]+) failed.*/\1/')))
  else
    echo "Browser tests ended without a summary line" >&2
    failed=$((failed + 1))
  fi
  [ "$b_rc" -eq 0 ] || status=1
  rm -f "$b_out"
fi

if [ ${#patterns[@]} -gt 0 ] && [ $((passed + failed)) -eq 0 ]; then
  echo "no C test and no Jest test file matches: ${patterns[*]}" >&2
  failed=1
fi
[ "$failed" -eq 0 ] || status=1
echo "$passed passed, $failed failed"
exit $status
