#!/usr/bin/env bash
# Runs every suite (the native C tests under ASan/UBSan, then Jest) even when
# one fails, and ends with one line that sums them: "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
status=0

echo "== C tests (native build, SIMDe + AddressSanitizer + UBSan)"
c_out=$(mktemp)
./build/native/qe-ctests 2>&1 | tee "$c_out"
c_rc=${PIPESTATUS[0]}
c_line=$(grep -E '^c-tests: [0-9]+ passed, [0-9]+ failed' "$c_out" | tail -n 1)
if [ -n "$c_line" ]; then
  passed=$((passed + $(echo "$c_line" | sed -E 's/.* ([0-9]+) passed.*/\1/')))
  failed=$((failed + $(echo "$c_line" | sed -E 's/.* ([0-9]+) failed.*/\1/')))
else
  echo "C tests ended without a summary line (crash?)" >&2
  failed=$((failed + 1))
fi
[ "$c_rc" -eq 0 ] || status=1
rm -f "$c_out"

echo "== Jest"
jest_json=$(mktemp)
# Node 20 validates relaxed SIMD only with a V8 flag, which NODE_OPTIONS may
# not carry: run Jest's own script under it (its workers inherit execArgv),
# so the relaxed-SIMD build is tested too. Node >= 21 has it by default.
node_flags=()
if [ "$(node -p 'process.versions.node.split(".")[0]')" = "20" ]; then
  node_flags+=(--experimental-wasm-relaxed-simd)
fi
node "${node_flags[@]}" node_modules/jest/bin/jest.js --ci --json --outputFile="$jest_json" "$@"
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

[ "$failed" -eq 0 ] || status=1
echo "$passed passed, $failed failed"
exit $status
