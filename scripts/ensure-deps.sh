#!/usr/bin/env bash
# Installs what the build and tests need, and only what is missing, so a
# second run costs a few milliseconds: Debian's emscripten (emcc 3.1.6),
# clang-19 and lld-19 for the relaxed-SIMD module (clang-14 knows only a
# pre-standard relaxed opcode), SIMDe for the native test build, then the npm
# dev dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v emcc >/dev/null 2>&1 || missing+=(emscripten)
command -v clang-19 >/dev/null 2>&1 || missing+=(clang-19)
command -v wasm-ld-19 >/dev/null 2>&1 || missing+=(lld-19)
[ -f /usr/include/simde/wasm/simd128.h ] || missing+=(libsimde-dev)
# libFuzzer (clang-19 -fsanitize=fuzzer) for the fuzz targets.
compgen -G '/usr/lib/llvm-19/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a' >/dev/null || missing+=(libclang-rt-19-dev)
command -v gcc >/dev/null 2>&1 || missing+=(gcc)
# The browser tests drive Debian's Chromium through playwright-core (no browser download).
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v make >/dev/null 2>&1 || missing+=(make)
command -v node >/dev/null 2>&1 || missing+=(nodejs npm)
# AddressSanitizer's runtime for the native tests ships with gcc's libasan.
if command -v gcc >/dev/null 2>&1 && ! echo 'int main(void){return 0;}' \
     | gcc -x c -fsanitize=address,undefined -o /dev/null - >/dev/null 2>&1; then
  missing+=(libasan8 libubsan1)
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "ensure-deps: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Building needs Node >= 20: the relaxed-SIMD module is checked by running
# it, which Node 18 (Debian's nodejs) cannot. Say so rather than fail later.
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "ensure-deps: Node $(node --version) is too old to build qe-flash; install Node 20 or later" >&2
  exit 1
fi

# npm ci only when node_modules is absent or older than the lock file.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
  touch node_modules/.package-lock.json
fi
