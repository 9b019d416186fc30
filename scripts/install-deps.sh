#!/usr/bin/env bash
# Installs what rewind needs on Debian 12 (run as root):
#   (no argument)  building and the tests: the test oracles and tools (tcpdump, tcpreplay, tshark, stenographer,
#                  clang with libFuzzer for the fuzz targets,
#                  chromium, ...), never parts of the product
#   --run          only what building and running rewind needs (scripts/run.sh)
#   --bench        the tests' packages plus the benchmarks' tools
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
pkgs=(cmake g++ make pkg-config
      libleveldb-dev libsnappy-dev libaio-dev libcpp-httplib-dev libpcap-dev rapidjson-dev
      zlib1g-dev libzstd-dev)
if [ "${1:-}" != "--run" ]; then
  pkgs+=(libgtest-dev
         tcpdump tcpreplay tshark python3 iproute2 curl openssl stenographer
         dpkg-dev file systemd adduser help2man
         chromium python3-websocket libnss3-tools clang libclang-rt-14-dev)
fi
[ "${1:-}" = "--bench" ] && pkgs+=(wireshark-common hyperfine time)
missing=()
for p in "${pkgs[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
