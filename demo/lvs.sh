#!/usr/bin/env bash
# make demo's LVS act: vrrpkit programs real IPVS in a throwaway qemu VM
# (pkg/vmlab), a client reaches the virtual server, a real server dies,
# leaves the table and comes back. The act itself is demo/lvs (Go, for
# pkg/vmlab); it needs no root, and skips, saying why, without qemu, a
# kernel in /boot with its modules, busybox-static or ipvsadm.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

command -v go >/dev/null || { echo "LVS act skipped: the go tool is not on PATH"; exit 0; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
go test -c -o "$dir/lvsdemo" ./demo/lvs
sup=
[[ -x bin/supervisor ]] && sup=$PWD/bin/supervisor # make build's: static
out=$dir/out
set +e
VRRPKIT_DEMO=1 VRRPKIT_SUPERVISOR=$sup "$dir/lvsdemo" -test.run '^TestDemoLVS$' -test.v -test.timeout 10m | tee "$out"
rc=${PIPESTATUS[0]}
set -e
if grep -q -- '--- SKIP' "$out"; then
	echo "LVS act skipped: $(grep -o 'vmlab: .*\|the LVS act needs .*' "$out" | head -1)"
fi
exit "$rc"
