# qe-flash: build the WebAssembly modules, the TypeScript package, and
# the native test build of the same C. `make test` and `make bench` install
# whatever is missing first (see scripts/ensure-deps.sh). `make help` lists
# the targets.
#
# Two kinds of module:
#   single-thread  wasm/qe-flash-{simd,scalar}.wasm       emcc, whole program (one rule)
#                  wasm/qe-flash-relaxed.wasm             objects, then wasm-ld (its own rule)
#   threaded       wasm/qe-flash-{simd,relaxed}-mt.wasm   objects, then wasm-ld (one template)
# Emscripten is the toolchain throughout: its compiler, its sysroot and its
# allocator (clang-19 compiles the relaxed module against the same sysroot).

EMCC        ?= emcc
CC_NATIVE   ?= gcc
CSRC        := $(sort $(wildcard csrc/*.c csrc/*/*.c))
CHDR        := $(sort $(wildcard csrc/*.h csrc/*/*.h))
EXPORTS     := $(shell bash scripts/wasm-exports.sh)

WASM_SIMD    := wasm/qe-flash-simd.wasm
WASM_SCALAR  := wasm/qe-flash-scalar.wasm
WASM_MT      := wasm/qe-flash-simd-mt.wasm
WASM_RELAXED := wasm/qe-flash-relaxed-mt.wasm
WASM_RELAXED_ST := wasm/qe-flash-relaxed.wasm
WASM_ALL     := $(WASM_SIMD) $(WASM_SCALAR) $(WASM_MT) $(WASM_RELAXED) $(WASM_RELAXED_ST)

# ---------------------------------------------------------------- single-thread
# SIMD128 and a scalar fallback for engines without it: one C source, emcc
# compiling and linking it as a standalone module with emscripten's libc.
ST_FLAGS        := -O3 -std=c11 -Wall -Wextra -Werror -Icsrc \
                   -sSTANDALONE_WASM --no-entry -sALLOW_MEMORY_GROWTH=1 \
                   -sINITIAL_MEMORY=16MB -sMAXIMUM_MEMORY=4GB -sTOTAL_STACK=1MB \
                   -sEXPORTED_FUNCTIONS=$(EXPORTS)
ST_FLAGS_simd   := -msimd128
ST_FLAGS_scalar :=

# $(call link_single,variant): compile and link every C file into $@.
link_single = $(EMCC) $(ST_FLAGS) $(ST_FLAGS_$(1)) $(CSRC) -o $@

wasm/qe-flash-%.wasm: $(CSRC) $(CHDR) Makefile
	@mkdir -p wasm
	$(call link_single,$*)

# ---------------------------------------------------------------- threaded
# SIMD128 plus atomics, on a shared memory the module imports, so the main
# thread's instance and one per worker run on the same memory. emcc refuses
# pthreads with STANDALONE_WASM, so the compiler makes objects and wasm-ld
# links them itself. No libc is linked: malloc/free/aligned_alloc come from
# Emscripten's thread-safe malloc (libdlmalloc-mt.a; any thread may call
# them), and csrc/runtime/malloc_shim.c (QE_MALLOC_SHIM) gives it heap size,
# growth, a lock, errno and abort (and says why not libemmalloc-mt.a);
# memcpy and memset are memory.copy/fill (bulk memory). Exported: every qe_* entry, and __stack_pointer so each
# worker instance can be given its own stack.
#
# The relaxed variant: csrc/simd.h's qe_f32x4_madd becomes
# f32x4.relaxed_madd (fused where the hardware has FMA). clang-14 (under
# emcc 3.1.6) knows only a pre-standard opcode, so clang-19 compiles it
# against emscripten's sysroot headers as emcc would, and wasm-ld-19 links
# it. Not through the clang-19 driver's link step: that runs Debian's
# wasm-opt 108, which cannot parse relaxed opcodes. Engines without relaxed
# SIMD refuse the whole module, so js/loader.ts loads it only where a probe
# validates.
CLANG19     ?= clang-19
WASM_LD     ?= wasm-ld-14
WASM_LD19   ?= wasm-ld-19
# Debian's emscripten sysroot; else ask emcc (0.4 s, so only when needed).
EM_SYSROOT  ?= $(or $(wildcard /usr/share/emscripten/cache/sysroot),$(patsubst --sysroot=%,%,$(filter --sysroot=%,$(shell $(EMCC) --cflags 2>/dev/null))))
MALLOC_MT   := $(EM_SYSROOT)/lib/wasm32-emscripten/libdlmalloc-mt.a

MT_CFLAGS   := -O3 -std=c11 -Wall -Wextra -Werror -Icsrc -msimd128 -matomics -mbulk-memory \
               -mmutable-globals -DQE_MALLOC_SHIM
comma       := ,
MT_LDFLAGS  := --no-entry --import-memory --shared-memory --initial-memory=16777216 \
               --max-memory=4294967296 -z stack-size=1048576 --strip-debug \
               --export=__stack_pointer $(patsubst _%,--export=%,$(subst $(comma), ,$(EXPORTS)))
MT_CC_simd       := $(EMCC)
MT_CFLAGS_simd   :=
MT_LD_simd       := $(WASM_LD)
MT_CC_relaxed    := $(CLANG19) --target=wasm32-unknown-emscripten --sysroot=$(EM_SYSROOT)
MT_CFLAGS_relaxed := -mrelaxed-simd
MT_LD_relaxed    := $(WASM_LD19)
# Node 20 validates relaxed SIMD only behind a flag (NODE_RELAXED below).
MT_CHECK_relaxed = $(NODE_RELAXED) scripts/check-mt-module.cjs $(1) --relaxed
MT_CHECK_simd    = scripts/check-mt-module.cjs $(1)

# $(call link_threaded,variant): link the variant's objects and the
# allocator into $@, checked (imports, exports, shared memory) before it
# replaces the installed module.
link_threaded = $(MT_LD_$(1)) $(MT_LDFLAGS) $(filter %.o,$^) $(MALLOC_MT) -o $@.tmp && \
                node $(call MT_CHECK_$(1),$@.tmp) && mv $@.tmp $@

# One compile rule and one link rule per variant, from this template.
define threaded_module
build/$(1)-mt/%.o: csrc/%.c $$(CHDR) Makefile
	@mkdir -p $$(@D)
	$$(MT_CC_$(1)) $$(MT_CFLAGS) $$(MT_CFLAGS_$(1)) -c $$< -o $$@

wasm/qe-flash-$(1)-mt.wasm: $$(patsubst csrc/%.c,build/$(1)-mt/%.o,$$(CSRC)) Makefile scripts/check-mt-module.cjs scripts/gen-c-api.js
	@mkdir -p wasm
	$$(call link_threaded,$(1))
endef
$(foreach variant,simd relaxed,$(eval $(call threaded_module,$(variant))))

# The relaxed single-thread build: the relaxed objects compiled without
# atomics, linked with Emscripten's single-thread malloc (libdlmalloc.a) and
# the same shim, on a memory of its own that it exports. Not shared: V8
# copies a typed array into shared memory with relaxed-atomic moves, 2.3x
# slower than into plain memory (1 KiB: 56 against 24 ns on Node 24), which
# a call of a microsecond or less (the pattern adapter) pays on every
# vector. js/loader.ts takes it for one thread, and where shared memory is
# not to be had (a browser page without cross-origin isolation).
MALLOC_ST   := $(EM_SYSROOT)/lib/wasm32-emscripten/libdlmalloc.a
ST_RELAXED_CFLAGS := -O3 -std=c11 -Wall -Wextra -Werror -Icsrc -msimd128 -mrelaxed-simd -mbulk-memory -DQE_MALLOC_SHIM
ST_RELAXED_LDFLAGS := --no-entry --export-memory --initial-memory=16777216 --max-memory=4294967296 \
               -z stack-size=1048576 --strip-debug $(patsubst _%,--export=%,$(subst $(comma), ,$(EXPORTS)))

build/relaxed/%.o: csrc/%.c $(CHDR) Makefile
	@mkdir -p $(@D)
	$(MT_CC_relaxed) $(ST_RELAXED_CFLAGS) -c $< -o $@

$(WASM_RELAXED_ST): $(patsubst csrc/%.c,build/relaxed/%.o,$(CSRC)) Makefile scripts/check-mt-module.cjs scripts/gen-c-api.js
	@mkdir -p wasm
	$(WASM_LD19) $(ST_RELAXED_LDFLAGS) $(filter %.o,$^) $(MALLOC_ST) -o $@.tmp && \
	  node $(NODE_RELAXED) scripts/check-mt-module.cjs $@.tmp --relaxed --single && mv $@.tmp $@

# ---------------------------------------------------------------- native tests
# The same kernels through SIMDe's SIMD128 implementation, with sanitizers:
# ASan + UBSan for every suite, and ThreadSanitizer for the suites that run
# on several POSIX threads (the closest native stand-in for workers sharing
# the module's memory).
NATIVE_FLAGS := -std=c11 -O1 -g -Wall -Wextra -Werror -Icsrc -Itest/c -DQE_NATIVE_SIMDE -pthread -fno-omit-frame-pointer
ASAN_FLAGS   := -fsanitize=address,undefined -fno-sanitize-recover=all
TSAN_FLAGS   := -fsanitize=thread
CTEST_SRC    := $(sort $(wildcard test/c/*.c))
CTEST_DEPS   := $(CSRC) $(CHDR) $(CTEST_SRC) $(sort $(wildcard test/c/*.h)) Makefile
CTEST_BIN    := build/native/qe-ctests
CTEST_TSAN   := build/native/qe-ctests-tsan
# The cases that start threads (qe-ctests runs those whose suite/case name matches).
TSAN_SUITES  := '^threads/' '^search/search_job' '^hnsw/hnsw_search_job'

$(CTEST_BIN): $(CTEST_DEPS)
	@mkdir -p $(@D)
	$(CC_NATIVE) $(NATIVE_FLAGS) $(ASAN_FLAGS) $(CSRC) $(CTEST_SRC) -lm -o $@

$(CTEST_TSAN): $(CTEST_DEPS)
	@mkdir -p $(@D)
	$(CC_NATIVE) $(NATIVE_FLAGS) $(TSAN_FLAGS) $(CSRC) $(CTEST_SRC) -lm -o $@

# ---------------------------------------------------------------- package
TS_SRC      := $(sort $(wildcard js/*.ts js/*/*.ts types/*.ts))

# libFuzzer targets: the same C natively through SIMDe, with ASan and UBSan.
# `make fuzz` runs each for FUZZ_SECONDS; `make test` runs each briefly.
FUZZ_CC     ?= clang-19
FUZZ_SECONDS ?= 600
FUZZ_FLAGS  := -std=c11 -O1 -g -Icsrc -Itest/fuzz -DQE_NATIVE_SIMDE \
               -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_BINS   := $(patsubst test/fuzz/fuzz_%.c,build/fuzz/fuzz_%,$(sort $(wildcard test/fuzz/fuzz_*.c)))

# Node 20 runs relaxed SIMD only with this V8 flag (Node >= 21 by default).
NODE_RELAXED := $(shell node -e 'process.stdout.write(process.versions.node.split(".")[0] === "20" ? "--experimental-wasm-relaxed-simd" : "")' 2>/dev/null)

# The JS view of the C API (QE_STATUS, QEExports, QE_EXPORT_NAMES), generated
# from the headers' QE_EXPORT declarations; committed, and checked by
# test/c-api.test.ts.
js/c-api.ts: $(CHDR) scripts/gen-c-api.js
	node scripts/gen-c-api.js
	@touch $@

# The worker program (js/thread-worker.ts, type-checked with the rest) as a
# string the package starts workers from, in every tree: generated, not
# committed (scripts/gen-worker-source.js bundles it with esbuild).
js/worker-source.ts: js/thread-worker.ts js/thread-protocol.ts scripts/gen-worker-source.js node_modules/.package-lock.json
	node scripts/gen-worker-source.js
	@touch $@

dist: build/dist.stamp

# CommonJS + declarations (tsconfig.build.json), then the ES-module output
# (tsconfig.esm.json) made into the Node and browser trees (scripts/build-esm.js).
# The stamp lives in build/, so the package ships no marker file.
build/dist.stamp: js/c-api.ts js/worker-source.ts report/viewer.js $(WASM_ALL) $(TS_SRC) tsconfig.json tsconfig.build.json tsconfig.esm.json scripts/build-esm.js node_modules/.package-lock.json
	rm -rf dist build/esm
	npx tsc -p tsconfig.build.json
	npx tsc -p tsconfig.esm.json
	node scripts/build-esm.js
	npx esbuild report/viewer.js --bundle --format=esm --minify --log-level=warning --outfile=dist/report/viewer.js
	@mkdir -p build && touch $@

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

# ---------------------------------------------------------------- targets
.PHONY: all wasm dist deps test test-c test-tsan test-js bench bench-matrix bench-browser fuzz fuzz-build soak clean help

all: wasm dist

wasm: $(WASM_ALL)

build/fuzz/fuzz_%: test/fuzz/fuzz_%.c test/fuzz/fuzz_input.h $(CSRC) $(CHDR) Makefile
	@mkdir -p build/fuzz
	$(FUZZ_CC) $(FUZZ_FLAGS) $(CSRC) $< -lm -o $@

fuzz-build: $(FUZZ_BINS)

# Every fuzz target for FUZZ_SECONDS (default 10 minutes) each.
fuzz: deps
	@$(MAKE) --no-print-directory fuzz-build
	bash scripts/fuzz.sh $(FUZZ_SECONDS)

# 100,000 mixed calls on one module: module memory flat within one page
# after the warm-up, no allocation outliving its call, sampled answers right
# (bench/soak.js; about a minute, so not part of make test).
soak: deps
	@$(MAKE) --no-print-directory all
	node $(NODE_RELAXED) bench/soak.js

deps:
	@bash scripts/ensure-deps.sh

# make test ARGS="flash-attention": only the C cases and Jest files matching
# (scripts/run-tests.sh); npm test -- flash-attention does the same.
test: deps
	@$(MAKE) --no-print-directory all $(CTEST_BIN) $(FUZZ_BINS)
	@bash scripts/run-tests.sh $(ARGS)

test-c: $(CTEST_BIN)
	$(CTEST_BIN)

test-tsan: $(CTEST_TSAN)
	TSAN_OPTIONS=halt_on_error=1 $(CTEST_TSAN) $(TSAN_SUITES)

test-js: all
	node $(NODE_RELAXED) node_modules/jest/bin/jest.js

# The headline run is on Node 24 (current LTS), with no V8 flags: what users
# get. Then the attention rows, in both call forms, on Node 24, 22 and 20
# (with and without its relaxed-SIMD flag). Node binaries come from the npm
# registry, once.
bench: deps
	@$(MAKE) --no-print-directory all
	@bash scripts/ensure-bench-peers.sh
	"$$(bash scripts/ensure-node.sh 24)" bench/run.js
	node bench/matrix.js --readme

# The attention rows alone, on Node 24, 22 and 20 (with and without the flag).
# Attention in headless Chromium, qe-flash and onnxruntime-web in one page (bench/browser/run.js).
bench-browser: deps
	@$(MAKE) --no-print-directory all
	node bench/browser/run.js

bench-matrix: deps
	@$(MAKE) --no-print-directory all
	node bench/matrix.js

clean:
	rm -rf build dist wasm/*.wasm

help:
	@echo 'make all        the five wasm modules and dist/ (the package)'
	@echo 'make wasm       the modules only: $(WASM_ALL)'
	@echo 'make dist       the TypeScript package (dist/cjs, dist/esm, dist/types)'
	@echo 'make js/c-api.ts  regenerate the JS view of the C API from csrc/**/*.h'
	@echo 'make js/worker-source.ts  the worker program (js/thread-worker.ts) as the string workers start from'
	@echo 'make test       install what is missing, build, run the C and Jest suites ("N passed, N failed");'
	@echo '                ARGS="pattern" runs only the C cases and Jest files matching'
	@echo 'make test-c     the native C tests (SIMDe, ASan + UBSan)'
	@echo 'make test-tsan  the native threaded C tests under ThreadSanitizer'
	@echo 'make test-js    the Jest suites'
	@echo 'make bench      the benchmark (bench/run.js on Node 24, then bench/matrix.js); writes bench/results/latest.*'
	@echo 'make bench-matrix  the attention rows on Node 24, 22 and 20'
	@echo 'make bench-browser  attention in headless Chromium: qe-flash and onnxruntime-web in one page, 1 and 2 threads'
	@echo 'make fuzz       every libFuzzer target for FUZZ_SECONDS (default 600) each'
	@echo 'make soak       100,000 mixed calls: module memory flat, no leaked allocation, sampled answers right'
	@echo 'make deps       install missing apt packages and npm dependencies'
	@echo 'make clean      remove build/, dist/ and the built modules'
