#!/bin/bash
# Records keepalived's verdict (`keepalived -t`) on each top-level sample of
# ../shared/keepalived-samples, the oracle TestKeepalivedVerdicts compares
# vrrpkit with. Run as root from the repository root:
#
#   bash pkg/config/testdata/keepalived-verdicts/record.sh [SAMPLES_DIR]
#
# keepalived runs in a fresh network namespace (unshare -n) that holds veth
# interfaces (the dummy driver is not in every kernel) with the names the
# samples use, so that its verdict is about
# the files, not about this host. The config id is fixed ("testhost") so
# @ID lines resolve the same everywhere. Each sample gets NAME.txt: the
# exit status on the first line, then everything keepalived printed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
samples=${1:-$here/../../../../../shared/keepalived-samples}
samples=$(cd "$samples" && pwd)
command -v keepalived >/dev/null || { echo "keepalived is not installed" >&2; exit 1; }
keepalived --version 2>&1 | head -1 > "$here/KEEPALIVED_VERSION"
for f in "$samples"/*; do
	[ -f "$f" ] || continue
	name=$(basename "$f")
	case "$name" in _*|*.md) continue ;; esac
	set +e
	out=$(unshare -n sh -c '
		ip link add eth0 type veth peer name eth1
		ip link add eth2 type veth peer name eth3
		ip link add eth4 type veth peer name eth5
		ip link add eth0.1 type veth peer name bond0
		for i in lo eth0 eth1 eth2 eth3 eth4 eth5 eth0.1 bond0; do ip link set "$i" up; done
		cd "$(dirname "$1")" && exec keepalived -t -i testhost -f "$1"' sh "$f" 2>&1)
	rc=$?
	set -e
	{ echo "$rc"; printf '%s\n' "$out" | sed "s#$samples/##g"; } > "$here/$name.txt"
done
