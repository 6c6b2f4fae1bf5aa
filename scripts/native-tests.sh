#!/usr/bin/env bash
# Builds the C++ cores of @persist/pager and @persist/heap with AddressSanitizer +
# UndefinedBehaviorSanitizer (plain cmake, no Node) and runs their native tests with
# ctest. Any sanitizer report fails the run (-fno-sanitize-recover, halt_on_error).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
for pkg in pager heap; do
  src="$root/packages/$pkg"
  out="$src/build-asan"
  cmake -S "$src" -B "$out" -DPERSIST_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
  cmake --build "$out" -j2 >/dev/null
  (cd "$out" && ctest --output-on-failure)
done
