#!/usr/bin/env bash
# Bounded libFuzzer runs (CI): builds every tests/fuzz/*.cpp target with clang, libFuzzer, ASan and UBSan (the
# libraries instrumented with -fsanitize=fuzzer-no-link) in a build tree of its own, then runs each for
# FUZZ_SECONDS (default 15) seconds. A crash, sanitizer report or leak fails the test. Skips (77) without clang.
# $1 = build dir of the main build, $2 = repository root.
set -euo pipefail
build="$1/fuzz-clang"
root="$2"
secs="${FUZZ_SECONDS:-15}"
command -v clang++ >/dev/null 2>&1 || { echo "clang++ not found: skipping libFuzzer runs"; exit 77; }
flags="-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -O1 -g"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DDSV4_FUZZ=ON -DCMAKE_CXX_FLAGS="$flags" >"$build.configure.log" 2>&1 || { cat "$build.configure.log"; exit 1; }
targets=()
for f in "$root"/tests/fuzz/*.cpp; do targets+=("fuzz_$(basename "$f" .cpp)"); done
cmake --build "$build" -j2 --target "${targets[@]}" >"$build.build.log" 2>&1 || { tail -50 "$build.build.log"; exit 1; }
status=0
for t in "${targets[@]}"; do
  corpus="$build/corpus/$t"
  mkdir -p "$corpus"
  if "$build/tests/$t" -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 "$corpus" \
      >"$build/$t.log" 2>&1; then
    echo "$t: ok ($(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$build/$t.log" | grep -o '[0-9]*$') runs in ${secs}s)"
  else
    echo "$t: FAILED"; tail -40 "$build/$t.log"; status=1
  fi
done
exit $status
