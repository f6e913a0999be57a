#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The benchmark inside the guest (scripts/bench.sh boots the release
# kernel and calls it). Not a test: it measures and prints.
#
# fio profiles against loop.ko and rust_loop.ko alternately, round after
# round in the same boot (timings under TCG vary a lot between boots, so
# only interleaved rounds give a fair ratio), on the same backing file, plus
# the raw backing file with O_DIRECT as the ceiling. Prints one line per
# measurement ("raw|c|rust PROFILE ROUND VALUE") and then a table of the
# medians.
#
#   tests/bench.sh [-r ROUNDS] [-t SECONDS] [-k RUST_LOOP_KO]

set -u
top=$(cd "$(dirname "$0")/.." && pwd)
ko=$top/build/release/rust_loop.ko
rounds=5
runtime=8
while getopts "r:t:k:" opt; do
	case $opt in
	r) rounds=$OPTARG ;;
	t) runtime=$OPTARG ;;
	k) ko=$OPTARG ;;
	*) exit 2 ;;
	esac
done

scratch=${RL_SCRATCH:-/scratch}
img=$scratch/bench.img
tmpimg=/dev/shm/bench.img
size_mb=512
out=$(mktemp -d)

# name|backing|loop dio|fio options|metric
profiles=(
	"randread-4k-psync-qd1|disk|on|--rw=randread --bs=4k --ioengine=psync --iodepth=1 --numjobs=1|iops"
	"randread-4k-libaio-qd32x2|disk|on|--rw=randread --bs=4k --ioengine=libaio --iodepth=32 --numjobs=2|iops"
	"randwrite-4k-libaio-qd32x2|disk|on|--rw=randwrite --bs=4k --ioengine=libaio --iodepth=32 --numjobs=2|iops"
	"read-1m-libaio-qd8|disk|on|--rw=read --bs=1m --ioengine=libaio --iodepth=8 --numjobs=1|mbps"
	"write-1m-libaio-qd8|disk|on|--rw=write --bs=1m --ioengine=libaio --iodepth=8 --numjobs=1|mbps"
	"randread-4k-buffered-tmpfs|tmpfs|off|--rw=randread --bs=4k --ioengine=psync --iodepth=1 --numjobs=1|iops"
)

echo "# rust_loop benchmark: $(uname -r), $(nproc) CPUs, $rounds rounds of ${runtime}s per profile"
echo "# preparing ${size_mb} MiB backing files on $scratch (ext4) and /dev/shm (tmpfs)"
dd if=/dev/urandom of="$img" bs=1M count=$size_mb status=none conv=fsync
cp "$img" "$tmpimg"

# fio FILE PROFILE-OPTIONS METRIC: prints the measured value.
run_fio() {
	local file=$1 opts=$2 metric=$3 json
	# shellcheck disable=SC2086
	json=$(fio --name=bench --filename="$file" --direct=1 --time_based \
		--runtime="$runtime" --ramp_time=1 --size=$((size_mb - 16))M \
		--group_reporting --output-format=json $opts 2>/dev/null) || return 1
	# fio may print warnings before the JSON document.
	json=$(echo "$json" | sed -n '/^{/,$p')
	if [ "$metric" = iops ]; then
		echo "$json" | jq '[.jobs[0].read.iops, .jobs[0].write.iops] | add | floor'
	else
		echo "$json" | jq '[.jobs[0].read.bw, .jobs[0].write.bw] | add / 1024 | floor'
	fi
}

load() {
	if [ "$1" = c ]; then modprobe loop; else insmod "$ko"; fi
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

for mod in loop rust_loop; do
	[ -d /sys/module/$mod ] && rmmod $mod
done

for round in $(seq "$rounds"); do
	for p in "${profiles[@]}"; do
		IFS='|' read -r name backing dio opts metric <<<"$p"
		file=$img
		[ "$backing" = tmpfs ] && file=$tmpimg
		if [ "$backing" = disk ]; then
			v=$(run_fio "$file" "$opts" "$metric")
			echo "raw $name $round ${v:-0}" | tee -a "$out/results"
		fi
		for drv in c rust; do
			load $drv || exit 1
			dev=$(losetup -f --show --direct-io="$dio" "$file") || exit 1
			v=$(run_fio "$dev" "$opts" "$metric")
			echo "$drv $name $round ${v:-0}" | tee -a "$out/results"
			losetup -d "$dev"
			unload $drv || exit 1
		done
	done
done

rm -f "$img" "$tmpimg"

# Medians and spreads per profile; the ratio is the median of the rounds'
# rust/C ratios (each round's pair ran back to back).
echo
awk '
	function median(a, n,   i, j, t) {
		for (i = 2; i <= n; i++)
			for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	{ v[$1, $2, $3] = $4; names[$2] = 1; if ($3 > nr) nr = $3; order[$2] = order[$2] ? order[$2] : ++np; byorder[order[$2]] = $2 }
	END {
		printf "%-28s %12s %12s %18s %10s %12s %9s\n", "profile", "C median", "Rust median", "Rust/C (min-max)", "C spread", "raw median", "Rust/raw"
		for (k = 1; k <= np; k++) {
			p = byorder[k]
			nc = nu = nr_ = nq = 0
			cmin = 1e18; cmax = 0; qmin = 1e18; qmax = 0
			for (r = 1; r <= nr; r++) {
				if (("c", p, r) in v) { c[++nc] = v["c", p, r]; if (v["c", p, r] < cmin) cmin = v["c", p, r]; if (v["c", p, r] > cmax) cmax = v["c", p, r] }
				if (("rust", p, r) in v) u[++nu] = v["rust", p, r]
				if (("raw", p, r) in v) w[++nr_] = v["raw", p, r]
				if (("c", p, r) in v && ("rust", p, r) in v && v["c", p, r] > 0) {
					q[++nq] = v["rust", p, r] / v["c", p, r]
					if (q[nq] < qmin) qmin = q[nq]; if (q[nq] > qmax) qmax = q[nq]
				}
			}
			mc = median(c, nc); mu = median(u, nu)
			raw = nr_ ? median(w, nr_) : 0
			printf "%-28s %12d %12d %7.2f (%.2f-%.2f) %4.0f%%-%3.0f%% %12s %9s\n", p, mc, mu, median(q, nq), qmin, qmax, 100 * cmin / mc, 100 * cmax / mc, raw ? sprintf("%d", raw) : "-", raw ? sprintf("%.0f%%", 100 * mu / raw) : "-"
		}
		print ""
		print "IOPS for 4k profiles, MiB/s for 1m profiles. C spread: slowest and fastest round against the C median."
	}' "$out/results"
rm -rf "$out"
