#!/usr/bin/env bash
# LVS health checking at scale, vrrpkit against keepalived 2.2.7, side by
# side in one run, in a qemu VM with real IPVS (pkg/vmlab; this machine's
# kernel has no ip_vs): 5,000 real servers in one virtual_server, each with
# TCP_CHECK { connect_timeout 1 retry 1 delay_before_retry 1 }, delay_loop 1,
# the same keepalived.conf for both; then the same with 200 real servers, a
# load the emulated VM keeps up with on a shared 2-CPU host (at 5,000 it
# cannot: TCG makes each TCP handshake cost about a millisecond of CPU in
# the guest kernel, so both daemons fall far behind delay_loop and the
# detection times there say little). Per daemon and size:
#
#  - CPU: utime+stime of every process of the daemon (vrrpkit: supervisor,
#    vrrpd, checkerd; keepalived -C: parent and checker child) over a steady
#    window, as % of one CPU, and of the checker process alone;
#  - PSS and RSS: sum over those processes of /proc/PID/smaps_rollup;
#  - checks per real server per second during the window (the listeners
#    count them): below 1/delay_loop, the daemon falls behind;
#  - detection: 200 listeners (100 of the small size) closed over 4 s;
#    p50/p99/max of the time from a close to the real server leaving the
#    kernel's IPVS table (polled over netlink), against the goal
#    delay_loop + retry*delay_before_retry + 50 ms.
#
# bench/lvsbench/main.go is the part that runs in the VM and says more;
# bench/lvsbench/lvsbench_test.go builds everything and boots the VM.
# Under TCG the absolute figures are inflated; the ratios are the point.
# Then vrrpkit alone natively at 5,000 (see below). Environment:
# LVSBENCH_ARGS adds flags to the program (-n 5000,1000, -steady 20s,
# -kill 100, -daemons keepalived ...), LVSBENCH_CPUS (2) and
# LVSBENCH_MEMORY (1024M) size the VM, NATIVE=0 skips the native part,
# KEEP=1 keeps the logs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

for tool in keepalived qemu-system-x86_64 ip go; do
	if ! command -v "$tool" >/dev/null; then
		echo "bench/lvs.sh: skipped: $tool is not installed"
		exit 0
	fi
done

work=$(mktemp -d /tmp/vrrpkit-bench-lvs.XXXXXX)
trap '[[ ${KEEP:-0} == 1 ]] && echo "bench/lvs.sh: logs kept in $work" >&2 || rm -rf "$work"' EXIT
rc=0
LVSBENCH=1 LVSBENCH_OUT=$work/report go test -count=1 -timeout 10m -run '^TestLVSBench$' -v ./bench/lvsbench/ >"$work/log" 2>&1 || rc=$?
if [[ -s $work/report ]]; then
	cat "$work/report"
elif [[ $rc == 0 ]] && grep -q -- '--- SKIP' "$work/log"; then
	# vmlab skips, saying why, without qemu, a kernel, its modules or busybox-static.
	echo "bench/lvs.sh: VM part skipped: $(grep -m1 -A1 -- '--- SKIP' "$work/log" | tail -1 | sed 's/^ *//')"
else
	echo "bench/lvs.sh: VM part failed (exit $rc):" >&2
	tail -n 60 "$work/log" >&2
	exit 1
fi

# vrrpkit alone on the host's own kernel, for figures free of emulation:
# the same program and configuration in a throwaway network namespace,
# real servers on 127.0.0.1, no IPVS (vrrpd says so and goes on; keepalived's
# checker exits without it, so it cannot be measured here). NATIVE=0 skips.
if [[ ${NATIVE:-1} == 1 ]]; then
	if [[ $(id -u) != 0 ]] || ! command -v unshare >/dev/null; then
		echo "bench/lvs.sh: native part skipped: needs root and unshare for a network namespace"
		exit 0
	fi
	# checkerd runs as nobody from the supervisor's binary: the directory must let it in.
	chmod 755 "$work"
	mkdir -m 755 "$work/bin"
	CGO_ENABLED=0 go build -trimpath -tags grpcnotrace -o "$work/bin/" ./cmd/supervisor ./bench/lvsbench
	echo
	# shellcheck disable=SC2016 # $0 and $@ are the inner shell's
	unshare -n sh -c 'ip link set lo up && exec "$0" "$@"' "$work/bin/lvsbench" -ipvs=false -netns=false \
		-rs-addr 127.0.0.1 -daemons vrrpkit -supervisor "$work/bin/supervisor" -work "$work/native" -n 5000 ${LVSBENCH_ARGS:-}
fi
