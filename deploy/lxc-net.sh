#!/usr/bin/env bash
# Makes sure LXC's network is up: the lxcbr0 bridge and the dnsmasq that hands guests their
# addresses. A bridge whose dnsmasq has died is restarted too, as a guest whose boot waits
# on DHCP (the busybox template's does) never gets past it otherwise. Works where systemd is
# absent. Run as root.
set -euo pipefail

lxc_net=/usr/libexec/lxc/lxc-net
pid_file=/run/lxc/dnsmasq.pid

dnsmasq_alive() {
  [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null
}

if ip link show lxcbr0 >/dev/null 2>&1 && dnsmasq_alive; then
  exit 0
fi
echo "==> starting lxc-net"
if [ -x "$lxc_net" ]; then
  "$lxc_net" stop force >/dev/null 2>&1 || true
  "$lxc_net" start >/dev/null 2>&1 || true
fi
if ! dnsmasq_alive; then
  systemctl restart lxc-net >/dev/null 2>&1 || true
fi
if ! dnsmasq_alive; then
  echo "warning: lxc-net's dnsmasq is not running; guests get no addresses" >&2
fi
