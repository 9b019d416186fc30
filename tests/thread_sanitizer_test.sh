#!/usr/bin/env bash
# The unit tests and the query server's tests again, built with ThreadSanitizer (cmake
# -DREWIND_SANITIZE_THREAD=ON, in BUILD/tsan): a data race or lock-order inversion anywhere they reach (the
# query read-ahead, admission, the index cache, the catalog, the live index, the server's threads) fails the
# test. Reports are written to files, so that none hides in a redirected stderr.
# usage: thread_sanitizer_test.sh PATH/TO/rewind PATH/TO/shared/pcaps
set -uo pipefail
REWIND=$(readlink -f "${1:?rewind binary}")
PCAPS=$(readlink -f "${2:?shared pcaps dir}")
HERE=$(cd "$(dirname "$0")" && pwd)
build=$(dirname "$REWIND")/tsan
reports=$(mktemp -d -p "${TMPDIR:-/tmp}" rewind-tsan-test.XXXXXX)
trap 'rm -rf "$reports"' EXIT
cmake -S "$HERE/.." -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREWIND_SANITIZE_THREAD=ON -DREWIND_BUILD_TESTS=ON > /dev/null &&
  cmake --build "$build" -j"$(nproc)" --target rewind rewind_unit_tests > "$reports/build.log" 2>&1 ||
  { echo "FAIL: building with ThreadSanitizer"; tail -20 "$reports/build.log"; exit 1; }
export TSAN_OPTIONS="halt_on_error=0:second_deadlock_stack=1:log_path=$reports/tsan:suppressions=$HERE/tsan.supp"
failed=0
"$build/rewind_unit_tests" > "$reports/unit.log" 2>&1 || { echo "FAIL: unit tests under ThreadSanitizer"; tail -20 "$reports/unit.log"; failed=1; }
for t in server_test admission_test; do
  bash "$HERE/$t.sh" "$build/rewind" "$PCAPS" > "$reports/$t.log" 2>&1
  rc=$?
  [ $rc -eq 0 ] || [ $rc -eq 77 ] || { echo "FAIL: $t under ThreadSanitizer"; grep FAIL "$reports/$t.log" | head; failed=1; }
done
if ls "$reports"/tsan* > /dev/null 2>&1; then
  echo "FAIL: ThreadSanitizer reports:"; head -60 "$reports"/tsan*; failed=1
fi
echo "thread_sanitizer_test: unit tests $(grep -o '[0-9]* tests from [0-9]* test suites ran' "$reports/unit.log"); $(tail -1 "$reports/server_test.log"); $(tail -1 "$reports/admission_test.log")"
exit $failed
