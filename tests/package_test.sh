#!/usr/bin/env bash
# The Debian package: `cpack` in the build directory makes rewind_<version>_amd64.deb, which holds the binary,
# rewind-read, the systemd unit, the config as a conffile and the docs, depends on the shared libraries the
# binary links, and creates the `rewind` user and its store when installed. The unit is checked with
# `systemd-analyze security --offline` (exposure below 4) and, once installed, `systemd-analyze verify`.
# Installing for real (dpkg -i, then purge) happens only on a throwaway machine: when CI=true.
#   usage: tests/package_test.sh REWIND_BINARY [PCAPS]      (exit 77: skipped, tools missing)
set -uo pipefail
REWIND=$(readlink -f "$1")
build=$(dirname "$REWIND")
for t in cpack dpkg-deb systemd-analyze; do command -v $t >/dev/null || { echo "package_test: needs $t"; exit 77; }; done
[ -f "$build/CPackConfig.cmake" ] || { echo "package_test: $build has no CPackConfig.cmake"; exit 77; }
work=$(mktemp -d -p "${TMPDIR:-/tmp}" rewind-package-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
has() { grep "$@" > /dev/null; }

(cd "$work" && cpack --config "$build/CPackConfig.cmake" -B "$work/out" > "$work/cpack.log" 2>&1) ||
  { echo "FAIL: cpack: $(tail -5 "$work/cpack.log")"; exit 1; }
deb=$(ls "$work"/out/rewind_*_amd64.deb 2>/dev/null | head -1)
[ -n "$deb" ] && ok || { echo "FAIL: no package made: $(tail -5 "$work/cpack.log")"; exit 1; }

# Contents and control data.
list=$(dpkg-deb -c "$deb")
for f in ./usr/bin/rewind ./usr/bin/rewind-read ./usr/lib/systemd/system/rewind.service ./etc/rewind/rewind.json \
         ./usr/share/doc/rewind/README.md ./usr/share/man/man1/rewind.1.gz ./usr/share/man/man5/rewind.json.5.gz \
         ./usr/share/bash-completion/completions/rewind; do
  echo "$list" | has " $f\$" && ok || fail "package lacks $f"
done
# rewind.json(5) names every key the config reader accepts (the lists it checks keys against).
src=$(cd "$(dirname "$0")/.." && pwd)
keys=$(grep -E 'UnknownKey\(d, \{|check_keys\([a-z]+, \{' -A2 "$src/web/run_command.cc" |
       sed -n '/check_keys\|UnknownKey/,/})/p' | grep -o '"[a-z_]*"' | tr -d '"' | grep -vx 'capture\|server\|retention' | sort -u)
[ "$(echo "$keys" | wc -l)" -ge 33 ] && ok || fail "found only $(echo "$keys" | wc -l) config keys in run_command.cc"
for k in $keys; do
  grep -qE "^\.BR? (.*[ \"])?$k([ \"]|\$)" "$src/scripts/rewind.json.5" || fail "rewind.json(5) does not document \"$k\""
done
man -l "$src/scripts/rewind.json.5" 2>&1 >/dev/null | grep -q . && fail "rewind.json(5) has roff warnings" || ok
dpkg-deb -f "$deb" Depends | has "libpcap0.8" && dpkg-deb -f "$deb" Depends | has "libleveldb" && ok ||
  fail "Depends: $(dpkg-deb -f "$deb" Depends)"
mkdir -p "$work/control" && dpkg-deb -e "$deb" "$work/control"
grep -qx /etc/rewind/rewind.json "$work/control/conffiles" && ok || fail "the config is not a conffile"
has "adduser --system" "$work/control/postinst" && ok || fail "postinst does not create the user"

# The unpacked binary runs; the packaged config is one rewind accepts: `rewind run` starts on it (in a network
# namespace of its own, where the default interface is a loopback that is down; stopped after 5 s).
mkdir -p "$work/root" && dpkg-deb -x "$deb" "$work/root"
"$work/root/usr/bin/rewind" --version | has "^rewind $(dpkg-deb -f "$deb" Version)\$" && ok || fail "packaged binary --version"
sed "s|/var/lib/rewind|$work/store|" "$work/root/etc/rewind/rewind.json" > "$work/rewind.json"
if unshare -n true 2>/dev/null; then
  out=$(unshare -n timeout 5 "$work/root/usr/bin/rewind" run --config "$work/rewind.json" 2>&1); rc=$?
  echo "$out" | has "rewind run: capturing on" && ok || fail "packaged config (exit $rc): $out"
fi

# The unit: hardened (systemd's own score), and valid once the binary is where it says.
unit="$work/root/usr/lib/systemd/system/rewind.service"
score=$(systemd-analyze security --offline=true "$unit" 2>&1 | sed -n 's/.*Overall exposure level for rewind.service: \([0-9.]*\).*/\1/p')
echo "systemd-analyze security: exposure $score"
awk -v s="${score:-99}" 'BEGIN { exit !(s < 4) }' && ok || fail "unit exposure ${score:-?} (want below 4)"
for d in "User=rewind" "NoNewPrivileges=yes" "ProtectSystem=strict" "PrivateTmp=yes" "ProtectHome=yes" \
         "AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN CAP_IPC_LOCK" "RestrictAddressFamilies=" "SystemCallFilter="; do
  has "^$d" "$unit" && ok || fail "unit lacks $d"
done

if [ "${CI:-}" = true ] && command -v dpkg >/dev/null; then
  dpkg -i "$deb" > "$work/dpkg.log" 2>&1 && ok || fail "dpkg -i: $(tail -5 "$work/dpkg.log")"
  getent passwd rewind > /dev/null && ok || fail "no rewind user after install"
  [ "$(stat -c '%U %a' /var/lib/rewind 2>/dev/null)" = "rewind 750" ] && ok || fail "/var/lib/rewind: $(stat -c '%U %a' /var/lib/rewind 2>&1)"
  out=$(systemd-analyze verify /usr/lib/systemd/system/rewind.service 2>&1) && ok || fail "systemd-analyze verify: $out"
  dpkg --purge rewind > "$work/dpkg.log" 2>&1 && ok || fail "dpkg --purge: $(tail -5 "$work/dpkg.log")"
  [ ! -e /usr/bin/rewind ] && ! getent passwd rewind > /dev/null && ok || fail "purge left the binary or the user"
fi

echo "package_test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
