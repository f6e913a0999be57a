#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The benchmark inside the guest (scripts/bench.sh boots the release
# kernel, by default in QEMU's instruction-count mode, and calls it). Not a
# test: it measures and prints.
#
# Every profile runs on four targets, one after the other in each round
# (raw, null_blk, loop.ko, rust_loop, then the next profile; then the next
# round), all in guest memory so that no host I/O enters the numbers:
#   raw   the backing file itself, a file on tmpfs (/dev/shm)
#   null  null_blk (memory_backed=1, irqmode=0): the block layer's floor
#   c     loop.ko on the backing file
#   rust  rust_loop.ko on the backing file
# fio profiles give a cost per I/O in guest nanoseconds (1e9 / IOPS; under
# -icount shift=0 one nanosecond is one instruction); "fs-ext4" is a
# create/write 16 KiB/fsync loop on an ext4 made on the target; "ctl-*" is
# the control plane of Android's apexd (LOOP_CTL_GET_FREE + LOOP_CONFIGURE
# read-only with direct I/O, no partition scan, then the detach, for N
# devices, per device; GET_FREE creates most of them); "attach-*" the
# same on N devices added beforehand and never opened, as apexd binds the
# devices it pre-allocates (open, LOOP_CONFIGURE, close; then open,
# LOOP_CLR_FD, close); "mem-*" the kernel memory per idle bound device
# (MemFree and Slab deltas over N devices, bytes per device); "idle-*"
# the same per device added (LOOP_CTL_ADD) and never configured.
#
# Prints one line per measurement ("TARGET PROFILE ROUND COST"), then a
# table of the medians per target, the ratios the goals of issue 14 use,
# and the spread of each row: (max - min) / median over the rounds, the
# largest of the row's targets; a row above 1 % is flagged "!".
#
#   tests/bench.sh [-r ROUNDS] [-t SECONDS] [-k RUST_LOOP_KO] [-p REGEX]
#                  [-n CTL_DEVICES] [-m MEM_DEVICES] [-c CLOCK] [-f TARGETS]
#                  [-s]
#   -s runs the scaling rows only (below, at the profiles).
#   -p runs only the profiles whose name matches REGEX (grep -E); -c names
#   the clock in the header (scripts/bench.sh passes icount or wall); -f
#   TARGETS (e.g. "rust c") records a perf profile (cpu-clock, every 100 us
#   of guest time, the whole guest) of those targets' fio runs and prints
#   each profile's top symbols at the end (perf from scripts/build-perf.sh;
#   the sampling costs instructions too, so those runs' numbers are not
#   comparable with others). The
#   memory profile runs in every round too: the first load of a driver in
#   a boot pays one-time costs (about 4.6 KB of slab per device for loop.ko,
#   which runs first), which the median leaves out.

set -u
top=$(cd "$(dirname "$0")/.." && pwd)
ko=$top/build/release/rust_loop.ko
helper=$top/build/tests/loopbench
rounds=3
runtime=1
only=.
nctl=256
nmem=1000
clock=guest
perf_targets=
rublk=$top/build/rublk/bin/rublk
perf=$top/build/perf/perf
scale=
while getopts "r:t:k:p:n:m:c:f:u:s" opt; do
	case $opt in
	r) rounds=$OPTARG ;;
	t) runtime=$OPTARG ;;
	k) ko=$OPTARG ;;
	p) only=$OPTARG ;;
	n) nctl=$OPTARG ;;
	m) nmem=$OPTARG ;;
	c) clock=$OPTARG ;;
	f) perf_targets=$OPTARG ;;
	u) rublk=$OPTARG ;;
	s) scale=1 ;;
	*) exit 2 ;;
	esac
done

img=/dev/shm/bench.img
size_mb=256
mnt=/mnt/bench
nullb=/dev/nullb0
out=$(mktemp -d)

# name|targets|loop direct I/O|fio options (or the kind of measurement)
# Targets: raw (the file), null (null_blk), c (loop.ko), rust (rust_loop),
# and the peers a user might pick instead of a loop device, over the same
# file: nbd (qemu-nbd --cache=none, through the kernel's nbd driver on a
# socket pair), ublk and ublkz (rublk's loop target, without and with
# zero copy). A peer that cannot run here is left out of the rows, with
# one "# peer: ..." line saying why.
profiles=(
	"randread-4k-psync-qd1|raw null c rust nbd ublk ublkz|on|--rw=randread --bs=4k --ioengine=psync --iodepth=1"
	"randwrite-4k-psync-qd1|raw null c rust nbd ublk ublkz|on|--rw=randwrite --bs=4k --ioengine=psync --iodepth=1"
	"randread-4k-uring-qd32|raw null c rust nbd ublk ublkz|on|--rw=randread --bs=4k --ioengine=io_uring --iodepth=32"
	"randwrite-4k-uring-qd32|raw null c rust nbd ublk ublkz|on|--rw=randwrite --bs=4k --ioengine=io_uring --iodepth=32"
	"randread-4k-libaio-qd32|raw null c rust nbd ublk ublkz|on|--rw=randread --bs=4k --ioengine=libaio --iodepth=32"
	"randwrite-4k-libaio-qd32|raw null c rust nbd ublk ublkz|on|--rw=randwrite --bs=4k --ioengine=libaio --iodepth=32"
	"read-1m-libaio-qd8|raw null c rust nbd ublk ublkz|on|--rw=read --bs=1m --ioengine=libaio --iodepth=8"
	"write-1m-libaio-qd8|raw null c rust nbd ublk ublkz|on|--rw=write --bs=1m --ioengine=libaio --iodepth=8"
	"rw70-4k-psync-fsync32|raw null c rust nbd ublk ublkz|on|--rw=randrw --rwmixread=70 --bs=4k --ioengine=psync --iodepth=1 --fsync=32"
	"randread-4k-psync-qd1-buf|c rust|off|--rw=randread --bs=4k --ioengine=psync --iodepth=1"
	"randwrite-4k-psync-qd1-buf|c rust|off|--rw=randwrite --bs=4k --ioengine=psync --iodepth=1"
	"randread-4k-uring-qd32-buf|c rust|off|--rw=randread --bs=4k --ioengine=io_uring --iodepth=32"
	"fs-ext4|null c rust nbd ublk ublkz|on|fs"
	"fs-ext4-buf|c rust|off|fs"
	"ctl-$nctl|c rust|on|ctl"
	"attach-$nctl|c rust|on|attach"
	"mem-$nmem|c rust|on|mem"
	"idle-$nmem|c rust|on|idle"
)
# -s: the scaling rows instead, one fio job per CPU of the guest, each
# bound to its CPU; rust_loop with a hardware queue per CPU
# (nr_hw_queues), null_blk with a submission queue per CPU, rublk with a
# queue per CPU; loop.ko has one hardware queue. The cost is 1e9 / the
# jobs' summed IOPS: under icount the vCPUs run in turn on one virtual
# clock, so it is the guest instructions per I/O summed over all CPUs.
jobs=1
if [ -n "$scale" ]; then
	jobs=$(nproc)
	j="--numjobs=$jobs --cpus_allowed=0-$((jobs - 1)) --cpus_allowed_policy=split --group_reporting"
	profiles=(
		"randread-4k-psync-qd1-j$jobs|raw null c rust ublk|on|--rw=randread --bs=4k --ioengine=psync --iodepth=1 $j"
		"randread-4k-uring-qd32-j$jobs|raw null c rust ublk|on|--rw=randread --bs=4k --ioengine=io_uring --iodepth=32 $j"
	)
fi

echo "# rust_loop benchmark: $(uname -r), $(nproc) CPUs, $rounds rounds of ${runtime}s per fio run"
echo "# clock: $clock; ctl: $nctl devices, mem: $nmem devices"
echo "# preparing a ${size_mb} MiB backing file on tmpfs ($img) and null_blk"
dd if=/dev/zero of="$img" bs=1M count=$size_mb status=none
for mod in loop rust_loop null_blk; do
	[ -d /sys/module/$mod ] && rmmod $mod
done
modprobe null_blk nr_devices=1 gb=1 bs=512 memory_backed=1 irqmode=0 submit_queues=$jobs ||
	{ echo "# modprobe null_blk failed" >&2; exit 1; }
# null_blk's memory holds what was written; the reads find data too.
dd if="$img" of=$nullb bs=1M oflag=direct status=none
mkdir -p $mnt

if [ -n "$perf_targets" ]; then
	[ -x "$perf" ] || { echo "# no $perf (scripts/build-perf.sh)" >&2; exit 1; }
	echo "# perf: recording the fio runs of: $perf_targets (their costs include the sampling)"
fi

# fio FILE OPTIONS [PERF_DATA]: prints the cost of one I/O in guest ns;
# with PERF_DATA, under perf record (the whole guest, 10 000 samples per
# second of guest time).
run_fio() {
	local file=$1 opts=$2 json rec=()
	[ -n "${3:-}" ] && rec=("$perf" record -q -a -e cpu-clock -F 10000 -o "$3" --)
	# shellcheck disable=SC2086
	json=$("${rec[@]}" fio --name=bench --filename="$file" --direct=1 --time_based \
		--runtime="$runtime" --ramp_time=500ms --size=$((size_mb - 16))M \
		--numjobs=1 --output-format=json $opts 2>/dev/null) || return 1
	# fio may print warnings before the JSON document.
	json=$(echo "$json" | sed -n '/^{/,$p')
	echo "$json" | jq '1e9 / ([.jobs[0].read.iops, .jobs[0].write.iops] | add)'
}

# run_fs DEV: cost of one create/write/fsync in guest ns.
run_fs() {
	local v
	mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$1" \
		$((size_mb - 16))M || return 1
	mount "$1" $mnt || return 1
	v=$("$helper" fs $mnt "$runtime" | awk '{ print 1e9 / $2 }')
	umount $mnt
	echo "$v"
}

load() {
	if [ "$1" = c ]; then modprobe loop; else insmod "$ko" ${scale:+nr_hw_queues=$jobs}; fi
}

# peer_why PEER: why the peer cannot run here; nothing if it can.
peer_why() {
	case $1 in
	nbd)
		command -v qemu-nbd >/dev/null || { echo "no qemu-nbd"; return; }
		modprobe nbd nbds_max=1 2>/dev/null || { echo "no nbd module in $(uname -r)"; return; }
		rmmod nbd
		;;
	ublk | ublkz)
		[ -x "$rublk" ] || { echo "no rublk ($rublk: scripts/build-rublk.sh)"; return; }
		modprobe ublk_drv 2>/dev/null || { echo "no ublk_drv module in $(uname -r)"; return; }
		rmmod ublk_drv
		;;
	esac
}

# peer_start PEER: serves $img through the peer; prints its block device.
peer_start() {
	local dev
	case $1 in
	nbd)
		# Direct I/O on the file, as the loop devices' direct mode; the
		# kernel's nbd client on a socket pair to the forked server.
		modprobe nbd nbds_max=1 || return 1
		qemu-nbd -c /dev/nbd0 -k /dev/shm/qemu-nbd.sock -f raw --cache=none --aio=native \
			"$img" >&2 || return 1
		dev=/dev/nbd0
		;;
	ublk | ublkz)
		modprobe ublk_drv || return 1
		# One queue (one per CPU with -s), rublk's loop target over the
		# file (direct I/O); ublkz with zero copy (UBLK_F_AUTO_BUF_REG).
		"$rublk" add loop --quiet -n 0 -q $jobs -d 128 -f "$img" $([ "$1" = ublkz ] && echo -z) \
			>/dev/null || return 1
		dev=/dev/ublkb0
		;;
	esac
	for _ in $(seq 100); do
		[ -b "$dev" ] && [ "$(blockdev --getsize64 "$dev" 2>/dev/null || echo 0)" -gt 0 ] &&
			{ echo "$dev"; return 0; }
		sleep 0.1
	done
	echo "# $1: $dev did not appear" >&2
	return 1
}

# peer_stop PEER: tears down what peer_start set up.
peer_stop() {
	case $1 in
	nbd)
		qemu-nbd -d /dev/nbd0 >/dev/null 2>&1
		for _ in $(seq 50); do rmmod nbd 2>/dev/null && return 0; sleep 0.1; done
		;;
	ublk | ublkz)
		"$rublk" del -n 0 >/dev/null 2>&1
		for _ in $(seq 50); do rmmod ublk_drv 2>/dev/null && return 0; sleep 0.1; done
		;;
	esac
	echo "# cannot unload the $1 module" >&2
}

unload() {
	local m
	m=$([ "$1" = c ] && echo loop || echo rust_loop)
	losetup -D
	for _ in $(seq 50); do
		rmmod "$m" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "# cannot unload $m" >&2
	return 1
}

# measure TARGET DIO KIND: prints the cost (two for ctl, attach, mem, idle).
measure() {
	local target=$1 dio=$2 kind=$3 dev=
	case $target in
	raw) dev=$img ;;
	null) dev=$nullb ;;
	nbd | ublk | ublkz) dev=$(peer_start "$target") || { peer_stop "$target"; return 1; } ;;
	*)
		load "$target" || return 1
		if [ "$kind" != ctl ] && [ "$kind" != attach ] && [ "$kind" != mem ] && [ "$kind" != idle ]; then
			dev=$(losetup -f --show --direct-io="$dio" "$img") || return 1
		fi
		;;
	esac
	case $kind in
	fs) run_fs "$dev" ;;
	ctl | attach) "$helper" "$kind" "$img" "$nctl" | awk '{ print $3, $4 }' ;;
	mem) "$helper" mem "$img" "$nmem" | awk '{ printf "%.0f %.0f\n", $3 * 1024 / $2, $4 * 1024 / $2 }' ;;
	idle) "$helper" idle "$nmem" | awk '{ printf "%.0f %.0f\n", $3 * 1024 / $2, $4 * 1024 / $2 }' ;;
	*)
		case " $perf_targets " in
		*" $target "*) run_fio "$dev" "$kind" "$out/perf.$name.$target.$round" ;;
		*) run_fio "$dev" "$kind" ;;
		esac
		;;
	esac
	case $target in
	c | rust) unload "$target" ;;
	nbd | ublk | ublkz) peer_stop "$target" ;;
	esac
}

# The peers that cannot run here are left out, once said.
declare -A peer_off
for peer in nbd ublk ublkz; do
	why=$(peer_why $peer)
	[ -n "$why" ] && { peer_off[$peer]=1; echo "# peer: $peer left out: $why"; }
done

for round in $(seq "$rounds"); do
	for p in "${profiles[@]}"; do
		IFS='|' read -r name targets dio kind <<<"$p"
		echo "$name" | grep -Eq "$only" || continue
		for t in $targets; do
			[ -n "${peer_off[$t]:-}" ] && continue
			v=$(measure "$t" "$dio" "$kind")
			# A failed measurement is said, not recorded as a cost of 0.
			[ -n "$v" ] || { echo "# $t $name round $round: failed"; continue; }
			case $name in
			ctl-* | attach-*)
				read -r a b <<<"${v:-0 0}"
				echo "$t ${name%%-*}-configure-${name#*-} $round $a" | tee -a "$out/results"
				echo "$t ${name%%-*}-detach-${name#*-} $round $b" | tee -a "$out/results"
				;;
			mem-* | idle-*)
				read -r a b <<<"${v:-0 0}"
				echo "$t ${name%%-*}-memfree-${name#*-} $round $a" | tee -a "$out/results"
				echo "$t ${name%%-*}-slab-${name#*-} $round $b" | tee -a "$out/results"
				;;
			*) echo "$t $name $round ${v:-0}" | tee -a "$out/results" ;;
			esac
		done
	done
done

rmmod null_blk
rm -f "$img"

# The perf profiles: each recorded run's symbols above 0.5 % of the samples.
for f in "$out"/perf.*; do
	[ -e "$f" ] || continue
	echo
	echo "# perf profile ${f#"$out"/perf.} (profile.target.round): symbols of 0.5 % of the samples or more"
	"$perf" report -i "$f" --stdio --sort sym --percent-limit 0.5 2>/dev/null |
		grep -v '^#' | grep -v '^$' | sed 's/^/#   /'
done

# The statistics (tests/bench_stats.awk) and the results' reader, shared
# by the two tables' awk programs.
stats_awk="$(cat "$top/tests/bench_stats.awk")"'
	{
		if (!($2 in order)) { order[$2] = ++np; byorder[np] = $2 }
		n = ++cnt[$1, $2]; v[$1, $2, n] = $4
	}
'

echo
awk "$stats_awk"'
	END {
		split("raw null c rust", T, " ")
		printf "%-28s %9s %9s %9s %9s %8s %9s %9s %7s\n", "profile", "raw", "null_blk", "loop.ko", "rust", "C/rust", "rust-raw", "c-raw", "spread"
		printf "%-28s %9s %9s %9s %9s %8s %9s %9s %7s\n", "", "", "", "", "", "", "/null", "/null", ""
		for (k = 1; k <= np; k++) {
			p = byorder[k]; worst = rows(p, 4)
			ratio = m["c"] != "" && m["rust"] > 0 ? sprintf("%.2f", m["c"] / m["rust"]) : "-"
			or = m["raw"] != "" && m["null"] > 0 && m["rust"] != "" ? sprintf("%.2f", (m["rust"] - m["raw"]) / m["null"]) : "-"
			oc = m["raw"] != "" && m["null"] > 0 && m["c"] != "" ? sprintf("%.2f", (m["c"] - m["raw"]) / m["null"]) : "-"
			printf "%-28s %9s %9s %9s %9s %8s %9s %9s %6.2f%%%s\n", p, cell(m["raw"]), cell(m["null"]), cell(m["c"]), cell(m["rust"]), ratio, or, oc, 100 * worst, (worst > 0.01 ? " !" : "")
		}
		print ""
		print "Medians over the rounds. Costs in guest ns per I/O (fio: 1e9 / IOPS; fs-ext4: per"
		print "create+write+fsync; ctl, attach: per device), mem-*: bytes per idle bound device, idle-*: per"
		print "device added and never configured. C/rust: loop.ko"
		print "cost over rust_loop cost (> 1: rust_loop is faster or smaller). rust-raw/null: what"
		print "the driver adds to the raw file, in units of null_blk cost. spread: (max - min) / median,"
		print "the widest of the row; ! above 1 %."
	}' "$out/results"

# The peers beside rust_loop, where any ran.
if awk '$1 ~ /^(nbd|ublk|ublkz)$/ { f = 1 } END { exit !f }' "$out/results"; then
	echo
	awk "$stats_awk"'
	function r(x) { return x != "" && m["rust"] > 0 ? sprintf("%.2f", x / m["rust"]) : "-" }
	END {
		split("rust c nbd ublk ublkz", T, " ")
		printf "%-28s %9s %9s %9s %9s %9s %8s %8s %8s %7s\n", "peers", "rust", "loop.ko", "nbd", "ublk", "ublk-zc", "nbd/", "ublk/", "ublkzc/", "spread"
		printf "%-28s %9s %9s %9s %9s %9s %8s %8s %8s %7s\n", "", "", "", "", "", "", "rust", "rust", "rust", ""
		for (k = 1; k <= np; k++) {
			p = byorder[k]
			if (!cnt["nbd", p] && !cnt["ublk", p] && !cnt["ublkz", p]) continue
			worst = rows(p, 5)
			printf "%-28s %9s %9s %9s %9s %9s %8s %8s %8s %6.2f%%%s\n", p, cell(m["rust"]), cell(m["c"]), cell(m["nbd"]), cell(m["ublk"]), cell(m["ublkz"]), r(m["nbd"]), r(m["ublk"]), r(m["ublkz"]), 100 * worst, (worst > 0.01 ? " !" : "")
		}
		print ""
		print "The peers over the same file, costs as above; nbd/rust etc.: the cost of the peer over"
		print "that of rust_loop (> 1: rust_loop costs less)."
	}' "$out/results"
fi
rm -rf "$out"
