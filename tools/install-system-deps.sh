#!/usr/bin/env bash
# Installs the real components the tests run against, on a Debian machine, as root:
#   named-checkzone (bind9-utils), NSD (authoritative DNS server), redis-server (apt),
#   promtool and the prometheus server (both from Debian's prometheus package, extracted
#   without its dependencies or its system service), and a Consul binary built from its Go
#   module (tools/consul/build.sh).
# Binaries that do not come from apt land in $MESHSPEC_TOOLS/bin (default ~/.cache/meshspec-tools).
# Idempotent: what is already there is reused.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tools=${MESHSPEC_TOOLS:-$HOME/.cache/meshspec-tools}
mkdir -p "$tools/bin"

need_apt=()
command -v named-checkzone >/dev/null || need_apt+=(bind9-utils)
command -v nsd >/dev/null || [ -x /usr/sbin/nsd ] || need_apt+=(nsd)
command -v redis-server >/dev/null || need_apt+=(redis-server)
if [ ${#need_apt[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  # The nsd package may start a system service on port 53; the tests start their own NSD on
  # free loopback ports, so it is only switched off where systemd manages it.
  systemctl disable --now nsd >/dev/null 2>&1 || true
  # Likewise redis-server's service on port 6379: the tests start their own on free ports.
  systemctl disable --now redis-server >/dev/null 2>&1 || true
fi

if [ ! -x "$tools/bin/promtool" ] || [ ! -x "$tools/bin/prometheus" ]; then
  work=$(mktemp -d)
  (cd "$work" && apt-get download prometheus >/dev/null 2>&1 || { apt-get update -qq && apt-get download prometheus >/dev/null; })
  dpkg-deb -x "$work"/prometheus_*.deb "$work/x"
  install -m 0755 "$work/x/usr/bin/promtool" "$tools/bin/promtool"
  install -m 0755 "$work/x/usr/bin/prometheus" "$tools/bin/prometheus"
  rm -rf "$work"
fi

if [ -x "$here/consul/build.sh" ]; then
  "$here/consul/build.sh" >/dev/null
fi
echo "$tools/bin"
