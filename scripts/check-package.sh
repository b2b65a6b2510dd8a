#!/usr/bin/env bash
# The package as its users get it (CI step of .ci/run): `npm pack`, the
# tarball installed into a fresh project outside the repository (with Jest
# and TypeScript, from the npm cache when it has them), then under Node 18,
# 20, 22 and 24 (scripts/ensure-node.sh):
#   - ESM: named imports of '@agentic-qe/v3/flash-attention', the same names
#     as CommonJS, attention (small and threaded), search, a bad call;
#   - CommonJS: the same through require();
#   - TypeScript: a consumer .mts and .cts type-check (strict, node16
#     resolution, lib es2022 alone and with DOM, no @types), and a wrong
#     workload name fails to;
#   - Jest: a consumer test that runs attention and checks values.
# The consumer's files are test/package-consumer/. Ends with "N passed,
# N failed" (each check under each Node is one test; so are pack and install).
#   scripts/check-package.sh [majors...]     (default: 18 20 22 24)
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD

majors=("$@")
[ ${#majors[@]} -gt 0 ] || majors=(18 20 22 24)

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "  ok    $1"; }
fail() { failed=$((failed + 1)); echo "  FAIL  $1"; [ -z "${2:-}" ] || sed 's/^/        /' "$2" | tail -n 30; }
finish() {
  echo "package check: $passed passed, $failed failed"
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit $?
}

work=$(mktemp -d "${TMPDIR:-/tmp}/qe-flash-consumer-XXXXXX")
trap 'rm -rf "$work"' EXIT
log=$work/log

echo "== npm pack"
# prepack runs `make all` (a no-op when the build is current).
if tarball=$(npm pack --silent --pack-destination "$work" 2> "$log" | tail -n 1) && [ -f "$work/$tarball" ]; then
  pass "npm pack: $tarball ($(du -k "$work/$tarball" | cut -f1) KiB)"
else
  fail "npm pack" "$log"
  finish
fi
# What a user downloads: the five modules, the CommonJS and ES-module entries, the types.
listing=$(tar tzf "$work/$tarball")
missing=()
for f in package/package.json package/README.md package/wasm/qe-flash-simd.wasm package/wasm/qe-flash-scalar.wasm \
  package/wasm/qe-flash-simd-mt.wasm package/wasm/qe-flash-relaxed.wasm package/wasm/qe-flash-relaxed-mt.wasm; do
  grep -qx "$f" <<< "$listing" || missing+=("$f")
done
strays=$(grep -E '^package/(test|csrc|js|bench|scripts|node_modules|\.cache|build)/' <<< "$listing" | head -n 5)
if [ ${#missing[@]} -eq 0 ] && [ -z "$strays" ]; then
  pass "tarball holds the modules and no sources or tests ($(wc -l <<< "$listing") files)"
else
  echo "missing: ${missing[*]:-none}; should not ship: ${strays:-none}" > "$log"
  fail "tarball contents" "$log"
fi

echo "== a fresh project: npm install of the tarball, jest and typescript"
app=$work/app
mkdir -p "$app"
cp test/package-consumer/* "$app/"
jest_v=$(node -p 'require("./node_modules/jest/package.json").version' 2>/dev/null || echo 30)
ts_v=$(node -p 'require("./node_modules/typescript/package.json").version' 2>/dev/null || echo 5.9)
cat > "$app/package.json" <<EOF
{
  "name": "qe-flash-consumer",
  "version": "1.0.0",
  "private": true,
  "jest": { "testEnvironment": "node", "testMatch": ["**/*.test.cjs"], "moduleFileExtensions": ["js", "cjs", "mjs", "json"] }
}
EOF
# --prefer-offline: what the repository's own npm ci cached is used as is.
if (cd "$app" && npm install --prefer-offline --no-audit --no-fund --loglevel=error \
  "$work/$tarball" "jest@$jest_v" "typescript@$ts_v") > "$log" 2>&1; then
  pass "npm install $tarball jest@$jest_v typescript@$ts_v"
else
  fail "npm install into a fresh project" "$log"
  finish
fi

for major in "${majors[@]}"; do
  echo "== Node $major"
  if ! node_bin=$(bash scripts/ensure-node.sh "$major" 2> "$log"); then
    fail "Node $major: no binary (scripts/ensure-node.sh $major)" "$log"
    continue
  fi
  v=$("$node_bin" --version)
  # Each check runs from the consumer's folder, with nothing of this repository on its path.
  run() { (cd "$app" && env -u NODE_OPTIONS -u NODE_PATH -u QE_FLASH_MODULE timeout 300 "$node_bin" "$@") > "$log" 2>&1; }
  if run esm.mjs && grep -q '"attentionMaxDiff"' "$log"; then
    pass "Node $v ESM import: $(node -e 'const r=JSON.parse(require("fs").readFileSync(0,"utf8").trim().split("\n").pop()); console.log(`${r.module} module, ${r.threadsUsed} threads, max diff ${r.attentionMaxDiff.toExponential(1)}, ${r.names.length} names`)' < "$log")"
  else
    fail "Node $v ESM import" "$log"
  fi
  if run cjs.cjs && grep -q '"attentionMaxDiff"' "$log"; then
    pass "Node $v CommonJS require"
  else
    fail "Node $v CommonJS require" "$log"
  fi
  # Strict, node16 resolution, lib es2022 alone: no DOM, no @types (tsconfig.json); then with DOM.
  if run node_modules/typescript/bin/tsc -p tsconfig.json && run node_modules/typescript/bin/tsc -p tsconfig.dom.json; then
    if run node_modules/typescript/bin/tsc -p tsconfig.wrong.json; then
      echo "wrong.mts type-checked: the declarations are not read" > "$log"
      fail "Node $v TypeScript" "$log"
    elif grep -q "no-such-workload" "$log"; then
      pass "Node $v TypeScript: consumer.mts and consumer.cts check (node16, without and with DOM, no @types), a wrong workload does not"
    else
      fail "Node $v TypeScript: wrong.mts failed for another reason" "$log"
    fi
  else
    fail "Node $v TypeScript consumer" "$log"
  fi
  if run node_modules/jest/bin/jest.js --ci && grep -qE '^Tests: +[1-9][0-9]* passed, [0-9]+ total' "$log"; then
    pass "Node $v Jest: $(grep -E '^Tests: ' "$log")"
  else
    fail "Node $v Jest" "$log"
  fi
done

finish
