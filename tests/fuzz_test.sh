#!/usr/bin/env bash
# Every libFuzzer target (ASan + UBSan) for a short bounded time from its seed corpus (scripts/fuzz.sh): a
# crash, leak, sanitizer report or timeout fails the test and leaves the input in BUILD/crashes/TARGET/. Long
# runs are recorded in docs/reliability.md.
# usage: fuzz_test.sh PATH/TO/rewind PATH/TO/shared/pcaps
set -uo pipefail
REWIND=$(readlink -f "${1:?rewind binary}")
PCAPS=$(readlink -f "${2:?shared pcaps dir}")
HERE=$(cd "$(dirname "$0")" && pwd)
command -v clang++ >/dev/null || { echo "SKIP: clang not installed (scripts/install-deps.sh installs it)"; exit 77; }
ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 ||
  { echo "SKIP: no libFuzzer runtime (libclang-rt-14-dev)"; exit 77; }
BUILD=$(dirname "$REWIND")/fuzz PCAPS=$PCAPS bash "$HERE/../scripts/fuzz.sh" all "${FUZZ_SECONDS:-15}"
