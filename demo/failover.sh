#!/usr/bin/env bash
# make demo: a live VRRP failover between vrrpkit and keepalived 2.2.7, in
# throwaway network namespaces joined by a bridge. Nothing outside the
# namespaces is touched; everything is removed on exit, however it ends.
#
#   client ─┐
#   r1 ─────┼── bridge (192.0.2.0/24)     VIP 192.0.2.100
#   r2 ─────┘
#   r1: vrrpkit (priority 150)   r2: keepalived (priority 100)
#
# Then the LVS act (demo/lvs.sh): vrrpkit programming real IPVS in a qemu VM.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ $(id -u) != 0 ]]; then
	echo "make demo needs root (network namespaces)" >&2
	exit 1
fi
for tool in ip keepalived ping; do
	command -v "$tool" >/dev/null || { echo "make demo needs $tool (see .ci/run for the packages)" >&2; exit 1; }
done

p=vkdemo$$
dir=$(mktemp -d)
cleanup() {
	for ns in "$p-r1" "$p-r2" "$p-c" "$p-sw"; do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
		ip netns del "$ns" 2>/dev/null || true
	done
	rm -rf "$dir"
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run_in() { local ns=$1; shift; ip netns exec "$p-$ns" "$@"; }

say "building a segment: client, r1 (vrrpkit), r2 (keepalived) on one bridge"
ip netns add "$p-sw"
ip -n "$p-sw" link add br0 type bridge
ip -n "$p-sw" link set br0 type bridge mcast_snooping 0
ip -n "$p-sw" link set br0 up
n=1
for h in r1 r2 c; do
	ip netns add "$p-$h"
	ip link add "$p-$h" type veth peer name eth0 netns "$p-$h"
	ip link set "$p-$h" netns "$p-sw"
	ip -n "$p-sw" link set "$p-$h" master br0 up
	ip -n "$p-$h" link set lo up
	ip -n "$p-$h" link set eth0 up
	ip -n "$p-$h" addr add "192.0.2.$n/24" dev eth0
	n=$((n + 1))
done

conf() {
	cat <<C
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority $1
    advert_int 1
    version 3
    virtual_ipaddress {
        192.0.2.100/24
    }
}
C
}
conf 150 >"$dir/r1.conf"
conf 100 >"$dir/r2.conf"

say "starting vrrpkit on r1 and keepalived on r2"
run_in r1 bin/supervisor -f "$dir/r1.conf" --run-dir "$dir/run" >"$dir/r1.log" 2>&1 &
run_in r2 keepalived -n -l -D -f "$dir/r2.conf" -p "$dir/k.pid" -r "$dir/kv.pid" -c "$dir/kc.pid" --vrrp >"$dir/r2.log" 2>&1 &

wait_vip() {
	local host=$1
	for _ in $(seq 100); do
		if ip -n "$p-$host" -br addr show eth0 | grep -q 192.0.2.100; then return 0; fi
		sleep 0.1
	done
	return 1
}
wait_vip r1 || { echo "r1 never became master"; tail "$dir/r1.log"; exit 1; }
echo "r1: $(ip -n "$p-r1" -br addr show eth0)"
echo "r2: $(ip -n "$p-r2" -br addr show eth0)"
run_in c ping -c 2 -W 1 192.0.2.100 | tail -2
echo "client's neighbour entry: $(ip -n "$p-c" neigh show 192.0.2.100)"
echo "r1's MAC: $(ip -n "$p-r1" -br link show eth0 | awk '{print $3}')"

say "crashing r1: every vrrpkit process frozen, then SIGKILLed: keepalived on r2 takes over"
# SIGSTOP first: killing the supervisor alone would let vrrpd step down
# gracefully (it gets SIGTERM when its parent dies), which is not a crash.
start=$(date +%s%N)
ip netns pids "$p-r1" | xargs -r kill -STOP
ip netns pids "$p-r1" | xargs -r kill -9
wait_vip r2 || { echo "r2 never took over"; tail "$dir/r2.log"; exit 1; }
end=$(date +%s%N)
echo "r2 holds the VIP $(((end - start) / 1000000)) ms after the kill (Master_Down_Interval for priority 100 at 1 s: 3.61 s)"
echo "r2: $(ip -n "$p-r2" -br addr show eth0)"
run_in c ping -c 2 -W 1 192.0.2.100 | tail -2
echo "client's neighbour entry: $(ip -n "$p-c" neigh show 192.0.2.100)"
echo "r2's MAC: $(ip -n "$p-r2" -br link show eth0 | awk '{print $3}')"

say "restarting vrrpkit on r1: it preempts (priority 150 > 100)"
ip -n "$p-r1" addr del 192.0.2.100/24 dev eth0 2>/dev/null || true
run_in r1 bin/supervisor -f "$dir/r1.conf" --run-dir "$dir/run" >>"$dir/r1.log" 2>&1 &
wait_vip r1 || { echo "demo: r1 did not take the VIP back" >&2; exit 1; }
echo "r1 is master again: $(ip -n "$p-r1" -br addr show eth0)"
grep -h 'state change\|Entering' "$dir/r1.log" "$dir/r2.log" | tail -6

say "stopping vrrpkit gracefully (SIGTERM): priority 0, keepalived takes over within its skew time"
start=$(date +%s%N)
ip netns pids "$p-r1" | xargs -r kill -TERM
wait_vip r2 || { echo "demo: r2 did not take the VIP after SIGTERM" >&2; exit 1; }
end=$(date +%s%N) && echo "r2 holds the VIP $(((end - start) / 1000000)) ms after SIGTERM (skew time for priority 100 at 1 s: 0.61 s)"
sleep 0.5
echo "r1: $(ip -n "$p-r1" -br addr show eth0 2>/dev/null || true)"
say "failover act done; cleaning up"
cleanup
trap - EXIT

# The LVS act runs in a qemu VM of its own (the host kernel's IPVS is not
# used); it skips, saying why, when qemu or a kernel is missing.
bash demo/lvs.sh
