#!/usr/bin/env bash
# The unit tests and the command-line tests again, built with AddressSanitizer and UndefinedBehaviorSanitizer
# (cmake -DREWIND_SANITIZE=ON, in BUILD/asan): any report (out-of-bounds access, use after free, leak,
# undefined behaviour) fails the test; reports are written to files, so that none hides in a redirected stderr.
# usage: sanitizer_test.sh PATH/TO/rewind PATH/TO/shared/pcaps
set -uo pipefail
REWIND=$(readlink -f "${1:?rewind binary}")
PCAPS=$(readlink -f "${2:?shared pcaps dir}")
HERE=$(cd "$(dirname "$0")" && pwd)
build=$(dirname "$REWIND")/asan
reports=$(mktemp -d -p "${TMPDIR:-/tmp}" rewind-sanitizer-test.XXXXXX)
trap 'rm -rf "$reports"' EXIT
cmake -S "$HERE/.." -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREWIND_SANITIZE=ON -DREWIND_BUILD_TESTS=ON > /dev/null &&
  cmake --build "$build" -j"$(nproc)" --target rewind rewind_unit_tests > "$reports/build.log" 2>&1 ||
  { echo "FAIL: building with sanitizers"; tail -20 "$reports/build.log"; exit 1; }
export ASAN_OPTIONS="detect_leaks=1:log_path=$reports/asan" UBSAN_OPTIONS="print_stacktrace=1:log_path=$reports/ubsan"
failed=0
"$build/rewind_unit_tests" > "$reports/unit.log" 2>&1 || { echo "FAIL: unit tests under sanitizers"; tail -20 "$reports/unit.log"; failed=1; }
bash "$HERE/cli_test.sh" "$build/rewind" "$PCAPS" > "$reports/cli.log" 2>&1 || { echo "FAIL: cli_test under sanitizers"; grep FAIL "$reports/cli.log" | head; failed=1; }
if ls "$reports"/asan* "$reports"/ubsan* > /dev/null 2>&1; then
  echo "FAIL: sanitizer reports:"; head -40 "$reports"/asan* "$reports"/ubsan* 2>/dev/null; failed=1
fi
echo "sanitizer_test: unit tests $(grep -o '[0-9]* tests from [0-9]* test suites ran' "$reports/unit.log"), $(grep -o 'cli_test: .*' "$reports/cli.log")"
exit $failed
