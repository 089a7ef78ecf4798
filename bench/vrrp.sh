#!/usr/bin/env bash
# VRRP runtime, vrrpkit against keepalived 2.2.7, side by side in one run:
#
#  1. failover: excess of the takeover gap over Master_Down_Interval, with a
#     keepalived master (priority 200) SIGKILLed and a backup (priority 100)
#     that is either vrrpkit or keepalived; VRRPv3, advert_int INTERVALS
#     (0.1, 0.5, 1 and 3 s), on a quiet machine and with stress-ng --cpu 4
#     oversubscribing the CPUs (LOADS);
#     measured on a capture at the bridge: (first advert of the backup) -
#     (last advert of the old master) - (3*I + 156*I/256). RUNS trials each,
#     median and max.
#  2. cost: CPU % (utime+stime of every process of the daemon, children
#     included, over MEASURE seconds of wall time), RSS (sum of VmRSS) and PSS
#     (sum of Pss in /proc/PID/smaps_rollup) of 200 VRRPv3 instances at 0.1 s
#     on one interface, 1 VIP each: router A at priority 200 (master of all),
#     router B at 100 (backup of all); vrrpkit on both, then keepalived on
#     both. PSS divides a shared page among the processes mapping it, so
#     with A and B running one binary it halves the text; "A alone" is A's
#     figure before B starts, what one host running one daemon would see.
#  3. timers under load: 200 instances at 0.05 s, master vs backup of the same
#     kind, while `stress-ng --cpu 4` oversubscribes the CPUs for STRESS
#     seconds; counts the backup's takeovers (all spurious: the master is up).
#  4. tracking cost: the 200 instances of 2, master alone, each tracking its
#     own vrrp_script (/bin/true, interval 1 s): CPU % over MEASURE seconds
#     counting the scripts (cutime+cstime of the daemon's processes, which
#     reap them) and PSS, vrrpkit against keepalived on the same file.
#
# Everything runs in throwaway network namespaces (a switch with one bridge,
# routers A and B; 192.0.2.0/24), removed with every process this script
# started on every exit path. KEEP=1 keeps the work directory (logs,
# captures, configs).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

runs=${RUNS:-5}
measure=${MEASURE:-20}
stress=${STRESS:-30}
ninst=${INSTANCES:-200}
freezes=${FREEZES:-4}
parts=${PARTS:-1234} # which of the four to run
intervals=${INTERVALS:-0.1 0.5 1 3} # advert_int of the failover part
loads=${LOADS:-quiet stress}        # and under which loads
sup=${SUPERVISOR:-$PWD/bin/supervisor} # override to A/B another build
vrrpd=${VRRPD:-} # a separate vrrpd binary; by default the supervisor runs itself as vrrpd, as installed

if [[ $(id -u) != 0 ]]; then
	echo "bench/vrrp.sh: skipped: needs root for network namespaces and raw sockets"
	exit 0
fi
for tool in keepalived tcpdump stress-ng ip; do
	if ! command -v "$tool" >/dev/null; then
		echo "bench/vrrp.sh: skipped: $tool is not installed"
		exit 0
	fi
done
[[ -x $sup && ( -z $vrrpd || -x $vrrpd ) ]] || { echo "bench/vrrp.sh: build first (make build)" >&2; exit 1; }

tag=vrb$$ # namespace prefix; not netlab's "vk<pid>..." so its Sweep leaves us alone
sw=$tag-sw
nsa=$tag-a
nsb=$tag-b
work=$(mktemp -d /tmp/vrrpkit-bench-vrrp.XXXXXX)
pgids=() # process groups started here (each daemon is its group's leader)

# tree PID: PID and all its descendants.
tree() {
	ps -e -o pid=,ppid= | awk -v root="$1" '
		{ kids[$2] = kids[$2] " " $1 }
		END {
			n = 1; q[1] = root
			for (i = 1; i <= n; i++) {
				print q[i]
				m = split(kids[q[i]], k, " ")
				for (j = 1; j <= m; j++) q[++n] = k[j]
			}
		}'
}

# ours PID: PID is a live child of this script (so not a recycled pid).
ours() { [[ $(ps -o ppid= -p "$1" 2>/dev/null | tr -d ' ') == "$$" ]]; }

# kill_tree SIG PID: SIG to every process group in the tree of PID, a child
# of this script, in one kill(1), so that no member outlives the others long
# enough to act on it.
kill_tree() {
	local sig=$1 groups
	ours "$2" || return 0
	groups=$(for p in $(tree "$2"); do ps -o pgid= -p "$p" 2>/dev/null || true; done | sort -u | awk '{printf " -%s", $1}')
	[[ -n $groups ]] && kill "-$sig" -- $groups 2>/dev/null || true
}

# stop PID: SIGTERM to its tree, SIGKILL after 5 s, reaped.
stop() {
	local pid=$1
	kill -0 "$pid" 2>/dev/null || return 0
	kill_tree TERM "$pid"
	for _ in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	kill_tree KILL "$pid"
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$? p
	trap - EXIT INT TERM
	for p in "${pgids[@]}"; do
		kill_tree KILL "$p"
	done
	for p in "${pgids[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	# Anything still inside our namespaces (nothing, normally).
	for n in "$nsa" "$nsb" "$sw"; do
		for p in $(ip netns pids "$n" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
		ip netns del "$n" 2>/dev/null || true
	done
	if [[ ${KEEP:-0} == 1 || $rc != 0 ]]; then
		echo "bench/vrrp.sh: logs kept in $work" >&2
	else
		rm -rf "$work"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start LOG NS CMD...: runs CMD in namespace NS (or the host's, NS="-") as the
# leader of a new process group, output in LOG; sets $started to its pid.
started=
start() {
	local log=$1 ns=$2
	shift 2
	if [[ $ns == - ]]; then
		setsid "$@" >"$log" 2>&1 </dev/null &
	else
		setsid ip netns exec "$ns" "$@" >"$log" 2>&1 </dev/null &
	fi
	started=$!
	pgids+=("$started")
}

# wait_until SECONDS WHAT CMD...: polls CMD every 20 ms; fails naming WHAT.
wait_until() {
	local limit=$1 what=$2 end
	shift 2
	end=$(($(date +%s%N) + limit * 1000000000))
	until "$@"; do
		if (($(date +%s%N) > end)); then
			echo "bench/vrrp.sh: timed out after ${limit}s waiting for $what" >&2
			return 1
		fi
		sleep 0.02
	done
}

# The segment: bridge br0 in $sw (no multicast snooping: adverts flood),
# router A 192.0.2.1 and B 192.0.2.2 on eth0. No IPv6 anywhere.
net_setup() {
	local n
	for n in "$sw" "$nsa" "$nsb"; do
		ip netns add "$n"
		ip netns exec "$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
		ip -n "$n" link set lo up
	done
	ip -n "$sw" link add br0 type bridge mcast_snooping 0
	ip -n "$sw" link set br0 up
	local i=1
	for n in "$nsa" "$nsb"; do
		ip -n "$sw" link add "p$i" type veth peer name eth0 netns "$n"
		ip -n "$sw" link set "p$i" master br0 up
		ip -n "$n" addr add "192.0.2.$i/24" dev eth0
		ip -n "$n" link set eth0 up
		i=$((i + 1))
	done
}

# conf PRIO INTERVAL N: keepalived.conf (read by both daemons) with N
# VRRPv3 instances on eth0, VRID i holding 192.0.2.(9+i)/32.
conf() {
	local prio=$1 int=$2 n=$3 i
	printf 'global_defs {\n    router_id bench\n    vrrp_version 3\n}\n'
	for i in $(seq "$n"); do
		if [[ -n ${TRACK_SCRIPTS:-} ]]; then
			printf 'vrrp_script chk_%d {\n    script "/bin/true"\n    interval 1\n    weight -10\n}\n' "$i"
		fi
		printf 'vrrp_instance VI_%d {\n    state BACKUP\n    interface eth0\n    virtual_router_id %d\n' "$i" "$i"
		if [[ -n ${TRACK_SCRIPTS:-} ]]; then
			printf '    track_script {\n        chk_%d\n    }\n' "$i"
		fi
		printf '    priority %d\n    advert_int %s\n    virtual_ipaddress {\n        192.0.2.%d/32\n    }\n}\n' "$prio" "$int" $((9 + i))
	done
}

# daemon KIND NS NAME PRIO INTERVAL N: starts vrrpkit or keepalived with the
# configuration above; sets $started.
daemon() {
	local kind=$1 ns=$2 name=$3 base=$work/$3
	conf "$4" "$5" "$6" >"$base.conf"
	if [[ $kind == vrrpkit ]]; then
		start "$base.log" "$ns" "$sup" -f "$base.conf" --run-dir "$base.run" ${vrrpd:+--vrrpd "$vrrpd"}
	else
		start "$base.log" "$ns" keepalived -n -l -D -G --vrrp -f "$base.conf" \
			-p "$base.pid" -r "$base.vrrp.pid" -c "$base.checkers.pid"
	fi
}

# in_backup LOG KIND N: LOG shows at least N instances entering BACKUP.
in_backup() { (($(backups "$1" "$2") >= $3)); }

vips() { ip -n "$1" -4 -o addr show dev eth0 | grep -c '/32 ' || true; }
has_vips() { [[ $(vips "$1") == "$2" ]]; }

# masters LOG KIND: how many "became master" lines LOG has.
masters() {
	if [[ $2 == vrrpkit ]]; then
		grep -c 'msg="state change".*to=MASTER' "$1" || true
	else
		grep -c 'Entering MASTER STATE' "$1" || true
	fi
}
backups() {
	if [[ $2 == vrrpkit ]]; then
		grep -c 'msg="state change".*to=BACKUP' "$1" || true
	else
		grep -c 'Entering BACKUP STATE' "$1" || true
	fi
}

# adverts PCAP: "epoch src prio vrid" per VRRP advert.
adverts() {
	tcpdump -r "$1" -tt -nn 2>/dev/null |
		awk '/VRRPv/ {
			p = ""; v = ""
			for (i = 1; i < NF; i++) { if ($i == "prio") p = $(i + 1); if ($i == "vrid") v = $(i + 1) }
			sub(",", "", p); sub(",", "", v); print $1, $3, p, v
		}'
}

capture() { # PCAP: tcpdump on the bridge, returns once it listens
	start "$1.log" "$sw" tcpdump -i br0 -n -U --immediate-mode -B 65536 -s 96 -Z root -w "$1" 'ip proto 112'
	local pid=$started
	wait_until 10 "tcpdump" grep -qs 'listening on' "$1.log"
	capture_pid=$pid
}
capture_stop() { # flush and end the capture
	kill -INT "$capture_pid" 2>/dev/null || true
	wait "$capture_pid" 2>/dev/null || true
}

net_setup
load=$(cut -d' ' -f1-3 /proc/loadavg)
steal0=$(awk '/^cpu / { print $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat)

# ---- 1. failover --------------------------------------------------------------

# flush_vips NS: removes the /32s a SIGKILLed daemon left behind.
flush_vips() {
	local a
	for a in $(ip -n "$1" -4 -o addr show dev eth0 | awk '/\/32 / { print $4 }'); do
		ip -n "$1" addr del "$a" dev eth0
	done
}

# failover KIND INTERVAL: RUNS failovers from a keepalived master to a KIND
# backup; sets $result to "median max" of the excess in ms (samples in $work).
failover() {
	local kind=$1 int=$2 mdi tag2=fo-$1-$2 b="" a t samples=() pcap first last
	# Master_Down_Interval of the priority-100 backup: 3*I + (256-100)*I/256.
	mdi=$(awk -v i="$int" 'BEGIN { printf "%.9f", 3 * i + 156 * i / 256 }')
	for t in $(seq "$runs"); do
		pcap=$work/$tag2-$t.pcap
		capture "$pcap"
		daemon keepalived "$nsa" "$tag2-$t-master" 200 "$int" 1
		a=$started
		if [[ -z $b ]]; then
			# The master first, so that the backup starts against it.
			wait_until 30 "the keepalived master" has_vips "$nsa" 1
			daemon "$kind" "$nsb" "$tag2-backup" 100 "$int" 1
			b=$started
			# In BACKUP means its socket is open: it hears the next advert.
			wait_until 30 "the $kind backup to start" in_backup "$work/$tag2-backup.log" "$kind" 1
		fi
		# The master owns the VIP (it preempts a backup that took over in
		# the previous trial), the backup has let it go.
		wait_until 30 "the keepalived master to take over" has_vips "$nsa" 1
		wait_until 30 "the $kind backup to step back" has_vips "$nsb" 0
		# The backup has now heard the master; two more adverts to be sure.
		sleep "$(awk -v i="$int" 'BEGIN { print 2 * i }')"
		kill_tree KILL "$a"
		wait "$a" 2>/dev/null || true
		flush_vips "$nsa"
		wait_until 30 "the $kind backup to take over" has_vips "$nsb" 1
		# The takeover advert leaves before the VIP is added; one interval for
		# tcpdump to write it.
		sleep "$int"
		capture_stop
		adverts "$pcap" >"$pcap.txt"
		# Last advert of the old master, then the first of the backup after it.
		awk -v mdi="$mdi" '
			$2 == "192.0.2.1" { last = $1; lastprio = $3; first = "" }
			$2 == "192.0.2.2" && last != "" && first == "" { first = $1 }
			END {
				if (last == "" || first == "") { print "ERR no failover in capture"; exit }
				if (lastprio == 0) { print "ERR old master sent priority 0"; exit }
				printf "%.3f\n", (first - last - mdi) * 1000
			}' "$pcap.txt" >"$pcap.excess"
		if grep -q ERR "$pcap.excess"; then
			echo "bench/vrrp.sh: $kind backup, advert_int $int, trial $t: $(cat "$pcap.excess")" >&2
			return 1
		fi
		samples+=("$(cat "$pcap.excess")")
	done
	stop "$b"
	printf '%s\n' "${samples[@]}" >"$work/$tag2.samples"
	result=$(printf '%s\n' "${samples[@]}" | sort -g | awk '{ a[NR] = $1 } END { printf "%.2f %.2f", a[int((NR + 1) / 2)], a[NR] }')
}

if [[ $parts == *1* ]]; then
# failovers LOAD: the table for one load ("quiet", or "stress": stress-ng
# --cpu 4 oversubscribing the CPUs for the whole table).
failovers() {
	local load=$1 stress_pid="" int om ox tm tx
	if [[ $load == stress ]]; then
		start "$work/stress-failover.log" - stress-ng --cpu 4 --timeout 3600s -q
		stress_pid=$started
	fi
	echo "VRRP failover ($load: $([[ $load == stress ]] && echo "stress-ng --cpu 4 on $(nproc) CPUs" || echo "no load of ours")): keepalived master (priority 200)"
	echo "SIGKILLed, backup at priority 100, VRRPv3. Excess of (first advert of the backup - last advert of the master)"
	echo "over Master_Down_Interval at the bridge, $runs runs each, ms (load average at start: $(cut -d' ' -f1-3 /proc/loadavg)):"
	printf '  %-10s %-22s %-26s %-29s %s\n' "advert_int" "Master_Down_Interval" "vrrpkit backup median/max" "keepalived backup median/max" "ratio of medians"
	for int in $intervals; do
		failover vrrpkit "$int"
		read -r om ox <<<"$result"
		failover keepalived "$int"
		read -r tm tx <<<"$result"
		printf '  %-10s %-22s %-26s %-29s %s\n' "${int}s" "$(awk -v i="$int" 'BEGIN { printf "%.3f ms", (3 * i + 156 * i / 256) * 1000 }')" \
			"$om / $ox" "$tm / $tx" "$(awk -v a="$om" -v b="$tm" 'BEGIN { print (b > 0 ? sprintf("%.2f", a / b) : "n/a") }')"
	done
	if [[ -n $stress_pid ]]; then
		stop "$stress_pid"
	fi
}
for load in $loads; do
	failovers "$load"
	echo
done
fi

# ---- 2. CPU and memory of 200 instances ----------------------------------------

# snap PID: one line per process of PID's tree: "pid label ticks rss_kb
# pss_kb", ticks being utime+stime (fields 14 and 15 of /proc/PID/stat), the
# label its comm ("keepalived-child" for a child with its parent's name) and
# the memory from /proc/PID/smaps_rollup (Linux 4.14; the same figures
# pkg/procmem reads), the whole process, whatever its threads.
# The ip netns exec wrapper has exec'd, so the tree holds only the daemon's.
snap() {
	local root=$1 rc q c t m
	rc=$(cat "/proc/$root/comm")
	for q in $(tree "$root"); do
		c=$(cat "/proc/$q/comm" 2>/dev/null) || continue
		[[ $q != "$root" && $c == "$rc" ]] && c=$c-child
		t=$(sed 's/.*) //' "/proc/$q/stat" 2>/dev/null | awk '{ print $12 + $13 }') || continue
		m=$(awk '/^Rss:/ { r = $2 } /^Pss:/ { p = $2 } END { if (r != "") print r, p }' "/proc/$q/smaps_rollup" 2>/dev/null) || continue
		[[ -n $m ]] || continue
		echo "$q $c $t $m"
	done
}

# usage SNAP0 SNAP1 NANOSECONDS: "cpu% rss_MB pss_MB nprocs detail" of a
# daemon between two snapshots (a process born in between counts from its
# start); detail is "comm cpu% RSS/PSS" per process.
usage() {
	awk -v hz="$(getconf CLK_TCK)" -v w="$3" '
		NR == FNR { t0[$1] = $3; next }
		{
			cpu = 100 * ($3 - t0[$1]) / hz / (w / 1e9); rss = $4 / 1024; pss = $5 / 1024
			tc += cpu; tr += rss; tp += pss; n++
			d = d sprintf("%s%s %.2f%% %.1f/%.1fMB", (n > 1 ? ", " : ""), $2, cpu, rss, pss)
		}
		END { printf "%.2f %.1f %.1f %d %s", tc, tr, tp, n, d }' "$1" "$2"
}

# memory SNAP: "rss_MB pss_MB detail" of one snapshot, detail "comm RSS/PSS"
# per process.
memory() {
	awk '{
			tr += $4 / 1024; tp += $5 / 1024; n++
			d = d sprintf("%s%s %.1f/%.1fMB", (n > 1 ? ", " : ""), $2, $4 / 1024, $5 / 1024)
		}
		END { printf "%.1f %.1f %s", tr, tp, d }' "$1"
}

# cost KIND: sets $ra and $rb to the usage of KIND on router A (master of
# all) and B (backup of all), $rm to A's memory before B starts, and $rt to
# the backup takeovers meanwhile.
cost() {
	local kind=$1 a b t0 t1 ma mb f=$work/cost-$1
	daemon "$kind" "$nsa" "cost-$kind-a" 200 0.1 "$ninst"
	a=$started
	wait_until 60 "$kind on A to be master of $ninst" has_vips "$nsa" "$ninst"
	# A alone: nothing else maps its binary, so PSS is the host's cost.
	sleep 3
	snap "$a" >"$f-a.alone"
	rm=$(memory "$f-a.alone")
	daemon "$kind" "$nsb" "cost-$kind-b" 100 0.1 "$ninst"
	b=$started
	wait_until 60 "$kind on B to be backup of $ninst" in_backup "$f-b.log" "$kind" "$ninst"
	# Settle: start-up garbage, the second garp round (5 s after becoming
	# master), the first GC cycles.
	sleep 6
	has_vips "$nsa" "$ninst" && has_vips "$nsb" 0 || { echo "bench/vrrp.sh: $kind did not converge" >&2; return 1; }
	ma=$(masters "$f-b.log" "$kind")
	t0=$(date +%s%N)
	snap "$a" >"$f-a.snap0"
	snap "$b" >"$f-b.snap0"
	sleep "$measure"
	snap "$a" >"$f-a.snap1"
	snap "$b" >"$f-b.snap1"
	t1=$(date +%s%N)
	mb=$(masters "$f-b.log" "$kind")
	ra=$(usage "$f-a.snap0" "$f-a.snap1" $((t1 - t0)))
	rb=$(usage "$f-b.snap0" "$f-b.snap1" $((t1 - t0)))
	rt=$((mb - ma))
	stop "$b"
	stop "$a"
	flush_vips "$nsa"
	flush_vips "$nsb"
}

if [[ $parts == *2* ]]; then
echo
echo "$ninst VRRPv3 instances at advert_int 0.1s on one interface, 1 VIP each; ${measure}s after settling:"
cost vrrpkit
read -r ocm orm opm _ od <<<"$ra"
read -r ocb orb opb _ odb <<<"$rb"
read -r oar oap oad <<<"$rm"
otr=$rt
cost keepalived
read -r tcm trm tpm _ td <<<"$ra"
read -r tcb trb tpb _ tdb <<<"$rb"
read -r tar tap tad <<<"$rm"
ttr=$rt
printf '  %-22s %7s %8s %8s   %s\n' "" "CPU %" "RSS MB" "PSS MB" "per process (CPU, RSS/PSS)"
printf '  %-22s %7s %8s %8s   %s\n' "vrrpkit as master" "$ocm" "$orm" "$opm" "$od"
printf '  %-22s %7s %8s %8s   %s\n' "vrrpkit as backup" "$ocb" "$orb" "$opb" "$odb"
printf '  %-22s %7s %8s %8s   %s\n' "keepalived as master" "$tcm" "$trm" "$tpm" "$td"
printf '  %-22s %7s %8s %8s   %s\n' "keepalived as backup" "$tcb" "$trb" "$tpb" "$tdb"
echo "  master alone on the host (before the backup starts; PSS is what the host pays):"
printf '  %-22s %7s %8s %8s   %s\n' "vrrpkit" "" "$oar" "$oap" "$oad"
printf '  %-22s %7s %8s %8s   %s\n' "keepalived" "" "$tar" "$tap" "$tad"
awk -v a="$ocm" -v b="$tcm" -v c="$ocb" -v d="$tcb" -v e="$orm" -v f="$trm" -v g="$orb" -v h="$trb" -v i="$oap" -v j="$tap" '
	function ratio(x, y) { return y > 0 ? sprintf("%.2f", x / y) : "n/a" }
	BEGIN {
		printf "  ratio vrrpkit/keepalived: CPU master %s, backup %s; RSS master %s, backup %s; PSS alone %s  (below 1: vrrpkit is leaner)\n",
			ratio(a, b), ratio(c, d), ratio(e, f), ratio(g, h), ratio(i, j)
	}'
if ((otr + ttr > 0)); then
	echo "  note: backup takeovers during the measurement: vrrpkit $otr, keepalived $ttr"
fi
fi

# ---- 3. timers under CPU load ---------------------------------------------------

# underload KIND: sets $result to "takeovers master_losses max_gap_ms drops"
# for a KIND master/backup pair of $ninst instances at 0.05 s during $stress s
# of stress-ng: the backup's takeovers, the master's instances that left
# MASTER, and the longest silence of one VRID's master seen at the bridge
# (with the packets tcpdump dropped, which would fake a gap).
underload() {
	local kind=$1 a b s mb la f=$work/load-$1 gap drops
	daemon "$kind" "$nsa" "load-$kind-a" 200 0.05 "$ninst"
	a=$started
	wait_until 60 "$kind on A to be master of $ninst" has_vips "$nsa" "$ninst"
	daemon "$kind" "$nsb" "load-$kind-b" 100 0.05 "$ninst"
	b=$started
	wait_until 60 "$kind on B to be backup of $ninst" in_backup "$f-b.log" "$kind" "$ninst"
	sleep 2
	has_vips "$nsa" "$ninst" && has_vips "$nsb" 0 || { echo "bench/vrrp.sh: $kind did not converge" >&2; return 1; }
	mb=$(masters "$f-b.log" "$kind")
	la=$(backups "$f-a.log" "$kind")
	capture "$f.pcap"
	start "$f-stress.log" - stress-ng --cpu 4 --timeout "${stress}s" -q
	s=$started
	wait "$s" || true
	capture_stop
	# A takeover near the end shows in the log within a Master_Down_Interval.
	sleep 0.5
	gap=$(adverts "$f.pcap" | awk '$2 == "192.0.2.1" {
			if ($4 in last && $1 - last[$4] > max) max = $1 - last[$4]
			last[$4] = $1
		} END { printf "%.1f", max * 1000 }')
	drops=$(awk '/packets dropped by kernel/ { print $1 }' "$f.pcap.log")
	result="$(($(masters "$f-b.log" "$kind") - mb)) $(($(backups "$f-a.log" "$kind") - la)) $gap ${drops:-?}"
	# Then freeze the backup's VRRP process for longer than
	# Master_Down_Interval while the master goes on advertising: the adverts
	# wait in its socket, so on waking it has heard the master in time and
	# should not take over (keepalived reads before it runs expired timers).
	local vp hit=0 total=0 t m0 m1
	vp=$(pgrep -P "$b" -x "$([[ $kind == vrrpkit ]] && echo vrrpd || echo keepalived)")
	for t in $(seq "$freezes"); do
		wait_until 10 "$kind on B to be backup again" has_vips "$nsb" 0
		m0=$(masters "$f-b.log" "$kind")
		kill -STOP "$vp"
		sleep 0.4
		kill -CONT "$vp"
		sleep 1
		m1=$(masters "$f-b.log" "$kind")
		total=$((total + m1 - m0))
		((m1 > m0)) && hit=$((hit + 1))
	done
	result="$result $hit $total"
	stop "$b"
	stop "$a"
	flush_vips "$nsa"
	flush_vips "$nsb"
}

if [[ $parts == *3* ]]; then
echo
echo "$ninst VRRPv3 instances at advert_int 0.05s (Master_Down_Interval 180.5 ms), master vs backup of the"
echo "same kind, during ${stress}s of stress-ng --cpu 4 on $(nproc) CPUs:"
underload vrrpkit
read -r otk ols ogap odrop ofh oft <<<"$result"
underload keepalived
read -r ttk tls tgap tdrop tfh tft <<<"$result"
printf '  %-12s %20s %24s %26s\n' "" "spurious takeovers" "master instances lost" "longest advert gap, ms"
printf '  %-12s %20s %24s %26s\n' "vrrpkit" "$otk" "$ols" "$ogap ($odrop dropped)"
printf '  %-12s %20s %24s %26s\n' "keepalived" "$ttk" "$tls" "$tgap ($tdrop dropped)"
echo "then the backup's VRRP process frozen 0.4 s (SIGSTOP; the master's adverts wait in its socket), $freezes times:"
printf '  %-12s %d of %d freezes ended in spurious takeovers (%d instances in all)\n' "vrrpkit" "$ofh" "$freezes" "$oft"
printf '  %-12s %d of %d freezes ended in spurious takeovers (%d instances in all)\n' "keepalived" "$tfh" "$freezes" "$tft"
fi

# ---- 4. tracking scripts ---------------------------------------------------------

# ticks_all PID: utime+stime+cutime+cstime summed over PID's tree: the
# scripts a process forked and reaped count in its cutime/cstime.
ticks_all() {
	local q
	for q in $(tree "$1"); do
		sed 's/.*) //' "/proc/$q/stat" 2>/dev/null | awk '{ print $12 + $13 + $14 + $15 }'
	done | awk '{ s += $1 } END { print s + 0 }'
}

# scripts KIND: sets $result to "cpu% pss_MB rss_MB" of KIND as master of
# $ninst instances, each tracking a vrrp_script run every second.
scripts() {
	local kind=$1 a t0 t1 c0 c1 f=$work/scripts-$1 m
	TRACK_SCRIPTS=1 daemon "$kind" "$nsa" "scripts-$kind-a" 200 1 "$ninst"
	a=$started
	wait_until 60 "$kind on A to be master of $ninst" has_vips "$nsa" "$ninst"
	sleep 6
	c0=$(ticks_all "$a")
	t0=$(date +%s%N)
	sleep "$measure"
	c1=$(ticks_all "$a")
	t1=$(date +%s%N)
	snap "$a" >"$f.snap"
	m=$(memory "$f.snap")
	read -r rss pss _ <<<"$m"
	result=$(awk -v c="$((c1 - c0))" -v hz="$(getconf CLK_TCK)" -v w="$((t1 - t0))" -v p="$pss" -v r="$rss" \
		'BEGIN { printf "%.2f %s %s", 100 * c / hz / (w / 1e9), p, r }')
	stop "$a"
	flush_vips "$nsa"
}

if [[ $parts == *4* ]]; then
echo
echo "$ninst VRRPv3 instances at advert_int 1s, master alone, each tracking its own vrrp_script (/bin/true every 1 s); ${measure}s:"
scripts vrrpkit
read -r scpu spss srss <<<"$result"
scripts keepalived
read -r kcpu kpss krss <<<"$result"
printf '  %-12s %22s %8s %8s\n' "" "CPU % (with scripts)" "PSS MB" "RSS MB"
printf '  %-12s %22s %8s %8s\n' "vrrpkit" "$scpu" "$spss" "$srss"
printf '  %-12s %22s %8s %8s\n' "keepalived" "$kcpu" "$kpss" "$krss"
awk -v a="$scpu" -v b="$kcpu" -v c="$spss" -v d="$kpss" 'BEGIN {
	printf "  ratio vrrpkit/keepalived: CPU %.2f, PSS %.2f  (below 1: vrrpkit is leaner)\n", a / b, c / d }'
fi

steal1=$(awk '/^cpu / { print $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat)
echo
awk -v a="$steal0" -v b="$steal1" 'BEGIN {
	split(a, x, " "); split(b, y, " ")
	printf "CPU stolen by the hypervisor during the run: %.1f%% (timing figures are noisy when this is high)\n", 100 * (y[1] - x[1]) / (y[2] - x[2])
}'
