#!/usr/bin/env bash
# Runs the libFuzzer targets (build/fuzz/fuzz_<name>, built by `make fuzz`)
# for SECONDS each, starting from the corpora kept in test/fuzz/corpus/<name>.
# New inputs go to build/fuzz/corpus/<name>; `--keep` merges the interesting
# ones back into the repository's corpus (libFuzzer's -merge=1 keeps only
# inputs that add coverage). A crash leaves its input in build/fuzz/ and
# fails the run. Prints one line per target with its execution count, then
# "fuzz: N passed, N failed".
#   scripts/fuzz.sh SECONDS [--keep] [name ...]
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${1:?usage: fuzz.sh SECONDS [--keep] [name ...]}
shift
keep=0
if [ "${1:-}" = "--keep" ]; then keep=1; shift; fi
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for f in test/fuzz/fuzz_*.c; do n=${f#test/fuzz/fuzz_}; names+=("${n%.c}"); done
fi

passed=0
failed=0
for name in "${names[@]}"; do
  bin=build/fuzz/fuzz_$name
  seeds=test/fuzz/corpus/$name
  work=build/fuzz/corpus/$name
  mkdir -p "$seeds" "$work"
  log=build/fuzz/$name.log
  "$bin" -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="build/fuzz/$name-" -print_final_stats=1 "$work" "$seeds" >"$log" 2>&1
  rc=$?
  execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
  if [ "$rc" -eq 0 ]; then
    passed=$((passed + 1))
    echo "fuzz $name: ok, ${execs:-?} executions in ${seconds} s"
    if [ "$keep" -eq 1 ]; then
      "$bin" -merge=1 -max_len=4096 "$seeds" "$work" >/dev/null 2>&1
    fi
  else
    failed=$((failed + 1))
    echo "fuzz $name: FAILED (exit $rc), ${execs:-?} executions; see $log"
    grep -E 'fuzz check failed|ERROR|SUMMARY|Test unit written' "$log" | head -n 5 | sed 's/^/    /'
  fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
