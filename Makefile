# qe-flash: build the WebAssembly modules, the TypeScript package, and
# the native test build of the same C. `make test` and `make bench` install
# whatever is missing first (see scripts/ensure-deps.sh).

EMCC        ?= emcc
CC_NATIVE   ?= gcc
CSRC        := $(sort $(wildcard csrc/*.c csrc/*/*.c))
CHDR        := $(sort $(wildcard csrc/*.h csrc/*/*.h))
EXPORTS     := $(shell bash scripts/wasm-exports.sh)

# One C source, two modules: SIMD128 and a scalar fallback for engines without it.
EMFLAGS     := -O3 -std=c11 -Wall -Wextra -Werror -Icsrc \
               -sSTANDALONE_WASM --no-entry -sALLOW_MEMORY_GROWTH=1 \
               -sINITIAL_MEMORY=16MB -sMAXIMUM_MEMORY=4GB -sTOTAL_STACK=1MB \
               -sEXPORTED_FUNCTIONS=$(EXPORTS)

WASM_SIMD   := wasm/qe-flash-simd.wasm
WASM_SCALAR := wasm/qe-flash-scalar.wasm
WASM_MT     := wasm/qe-flash-simd-mt.wasm
WASM_RELAXED := wasm/qe-flash-relaxed-mt.wasm

# The third module: SIMD128 plus atomics, on a shared memory that it imports,
# so the main thread's instance and one per worker run on the same memory.
# emcc refuses pthreads with STANDALONE_WASM, so: emcc compiles objects only,
# and wasm-ld links them itself. No libc is linked: csrc/runtime/heap.c
# (QE_OWN_HEAP) provides malloc/free/aligned_alloc; memcpy and memset become
# memory.copy/fill (bulk memory). Exported: every qe_* entry, and
# __stack_pointer so each worker instance can be given its own stack.
WASM_LD     ?= wasm-ld-14
MT_OBJDIR   := build/mt
MT_OBJS     := $(patsubst csrc/%.c,$(MT_OBJDIR)/%.o,$(CSRC))
MT_CFLAGS   := -O3 -std=c11 -Wall -Wextra -Werror -Icsrc -msimd128 -matomics -mbulk-memory \
               -mmutable-globals -DQE_OWN_HEAP
comma       := ,
MT_LDFLAGS  := --no-entry --import-memory --shared-memory --initial-memory=16777216 \
               --max-memory=4294967296 -z stack-size=1048576 --strip-debug \
               --export=__stack_pointer $(patsubst _%,--export=%,$(subst $(comma), ,$(EXPORTS)))

# The fourth module: the threaded one again, with relaxed SIMD (csrc/simd.h's
# qe_f32x4_madd becomes f32x4.relaxed_madd, fused where the hardware has
# FMA). clang-14 knows only a pre-standard opcode, so clang-19 compiles it,
# against emscripten's sysroot headers as emcc would, and wasm-ld-19 links
# it exactly as above. Not through the clang-19 driver's link step: that runs
# Debian's wasm-opt 108, which cannot parse relaxed opcodes. Engines without
# relaxed SIMD refuse the whole module, so js/loader.ts loads it only where
# a probe validates.
CLANG19     ?= clang-19
WASM_LD19   ?= wasm-ld-19
# Debian's emscripten sysroot; else ask emcc (0.4 s, so only when needed).
EM_SYSROOT  ?= $(or $(wildcard /usr/share/emscripten/cache/sysroot),$(patsubst --sysroot=%,%,$(filter --sysroot=%,$(shell $(EMCC) --cflags 2>/dev/null))))
RELAXED_OBJDIR := build/relaxed-mt
RELAXED_OBJS   := $(patsubst csrc/%.c,$(RELAXED_OBJDIR)/%.o,$(CSRC))
RELAXED_CFLAGS := --target=wasm32-unknown-emscripten --sysroot=$(EM_SYSROOT) $(MT_CFLAGS) -mrelaxed-simd

# Native build: the same kernels through SIMDe's SIMD128 implementation, with sanitizers.
NATIVE_FLAGS := -std=c11 -O1 -g -Wall -Wextra -Werror -Icsrc -DQE_NATIVE_SIMDE \
                -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
CTEST_SRC   := $(sort $(wildcard test/c/*.c))
CTEST_BIN   := build/native/qe-ctests

TS_SRC      := $(sort $(wildcard js/*.ts types/*.ts))

# libFuzzer targets: the same C natively through SIMDe, with ASan and UBSan.
# `make fuzz` runs each for FUZZ_SECONDS; `make test` runs each briefly.
FUZZ_CC     ?= clang-19
FUZZ_SECONDS ?= 600
FUZZ_FLAGS  := -std=c11 -O1 -g -Icsrc -Itest/fuzz -DQE_NATIVE_SIMDE \
               -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_BINS   := $(patsubst test/fuzz/fuzz_%.c,build/fuzz/fuzz_%,$(sort $(wildcard test/fuzz/fuzz_*.c)))

# Node 20 runs relaxed SIMD only with this V8 flag (Node >= 21 by default).
NODE_RELAXED := $(shell node -e 'process.stdout.write(process.versions.node.split(".")[0] === "20" ? "--experimental-wasm-relaxed-simd" : "")' 2>/dev/null)

.PHONY: all wasm dist deps test test-c test-js bench bench-matrix fuzz fuzz-build clean

all: wasm dist

wasm: $(WASM_SIMD) $(WASM_SCALAR) $(WASM_MT) $(WASM_RELAXED)

$(WASM_SIMD): $(CSRC) $(CHDR) Makefile
	@mkdir -p wasm
	$(EMCC) $(EMFLAGS) -msimd128 $(CSRC) -o $@

$(WASM_SCALAR): $(CSRC) $(CHDR) Makefile
	@mkdir -p wasm
	$(EMCC) $(EMFLAGS) $(CSRC) -o $@

$(MT_OBJDIR)/%.o: csrc/%.c $(CHDR) Makefile
	@mkdir -p $(dir $@)
	$(EMCC) $(MT_CFLAGS) -c $< -o $@

$(WASM_MT): $(MT_OBJS) Makefile scripts/check-mt-module.cjs scripts/gen-c-api.js
	@mkdir -p wasm
	$(WASM_LD) $(MT_LDFLAGS) $(MT_OBJS) -o $(MT_OBJDIR)/linked.wasm
	node scripts/check-mt-module.cjs $(MT_OBJDIR)/linked.wasm
	cp $(MT_OBJDIR)/linked.wasm $@

$(RELAXED_OBJDIR)/%.o: csrc/%.c $(CHDR) Makefile
	@mkdir -p $(dir $@)
	$(CLANG19) $(RELAXED_CFLAGS) -c $< -o $@

# Node 20 validates relaxed SIMD only behind a flag (NODE_RELAXED below).
$(WASM_RELAXED): $(RELAXED_OBJS) Makefile scripts/check-mt-module.cjs
	@mkdir -p wasm
	$(WASM_LD19) $(MT_LDFLAGS) $(RELAXED_OBJS) -o $(RELAXED_OBJDIR)/linked.wasm
	node $(NODE_RELAXED) scripts/check-mt-module.cjs $(RELAXED_OBJDIR)/linked.wasm --relaxed
	cp $(RELAXED_OBJDIR)/linked.wasm $@

dist: dist/.stamp

# The JS view of the C API (QE_STATUS, QEExports, QE_EXPORT_NAMES), generated
# from the headers' QE_EXPORT declarations; committed, and checked by
# test/c-api.test.ts.
js/c-api.ts: $(CHDR) scripts/gen-c-api.js
	node scripts/gen-c-api.js
	@touch $@

dist/.stamp: js/c-api.ts $(TS_SRC) tsconfig.json tsconfig.build.json scripts/write-esm-entry.js node_modules/.package-lock.json
	rm -rf dist
	npx tsc -p tsconfig.build.json
	node scripts/write-esm-entry.js
	@touch $@

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

$(CTEST_BIN): $(CSRC) $(CHDR) $(CTEST_SRC) $(sort $(wildcard test/c/*.h)) Makefile
	@mkdir -p build/native
	$(CC_NATIVE) $(NATIVE_FLAGS) -Itest/c $(CSRC) $(CTEST_SRC) -lm -o $@

build/fuzz/fuzz_%: test/fuzz/fuzz_%.c test/fuzz/fuzz_input.h $(CSRC) $(CHDR) Makefile
	@mkdir -p build/fuzz
	$(FUZZ_CC) $(FUZZ_FLAGS) $(CSRC) $< -lm -o $@

fuzz-build: $(FUZZ_BINS)

# Every fuzz target for FUZZ_SECONDS (default 10 minutes) each.
fuzz: deps
	@$(MAKE) --no-print-directory fuzz-build
	bash scripts/fuzz.sh $(FUZZ_SECONDS)

deps:
	@bash scripts/ensure-deps.sh

# make test ARGS="flash-attention": only the C cases and Jest files matching
# (scripts/run-tests.sh); npm test -- flash-attention does the same.
test: deps
	@$(MAKE) --no-print-directory all $(CTEST_BIN) $(FUZZ_BINS)
	@bash scripts/run-tests.sh $(ARGS)

test-c: $(CTEST_BIN)
	$(CTEST_BIN)

test-js: all
	node $(NODE_RELAXED) node_modules/jest/bin/jest.js

# The headline run is on Node 24 (current LTS), with no V8 flags: what users
# get. Then the attention rows again on Node 22 and Node 20 (with and without
# its relaxed-SIMD flag). Node binaries come from the npm registry, once.
bench: deps
	@$(MAKE) --no-print-directory all
	"$$(bash scripts/ensure-node.sh 24)" bench/run.js
	node bench/matrix.js --only=22,20 --readme

# The attention rows alone, on Node 24, 22 and 20 (with and without the flag).
bench-matrix: deps
	@$(MAKE) --no-print-directory all
	node bench/matrix.js

clean:
	rm -rf build dist wasm/*.wasm
