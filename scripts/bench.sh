#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# `make bench`: builds what is missing, boots the release kernel (or, with
# KERNEL=debian, Debian's packaged kernel; neither has sanitizers) and
# runs tests/bench.sh in the guest, which compares
# rust_loop.ko with loop.ko, the raw backing file and null_blk in
# interleaved rounds. Not a test. The output is also kept in
# build/bench/<date>.txt.
#
# Environment:
#   BENCH_CLOCK     icount (default): QEMU in instruction-count mode
#                   (QEMU_ICOUNT=1 of scripts/qemu.sh), timings in guest
#                   time, deterministic; wall: plain TCG, timings in host
#                   time as the guest sees it (noisy: ±50 % between rounds)
#   BENCH_ROUNDS    rounds (default 3)
#   BENCH_RUNTIME   seconds of guest time per fio run (default 1 under
#                   icount, 8 under wall)
#   BENCH_PROFILES  only the profiles matching this extended regex
#   BENCH_CTL       devices of the control-plane profile (default 256)
#   BENCH_MEM       devices of the memory profiles (default 1000)
#   KERNEL          release (default): this project's release kernel;
#                   debian: Debian's packaged kernel (scripts/build-debian.sh),
#                   rust_loop built against its headers, its own loop.ko
#   BENCH_SCALE     vCPU counts (e.g. "1 2 4 8"): instead of the profiles,
#                   the scaling rows (tests/bench.sh -s) in one boot per
#                   count, then a table of the cost per I/O against N
#   BENCH_PERF      targets ("rust", "c", "rust c", also "raw" or "null")
#                   whose fio runs are recorded by perf in the guest (built
#                   by scripts/build-perf.sh); each recording's top symbols
#                   are printed at the end. Under icount, samples of
#                   cpu-clock fall every so many executed instructions.

. "$(dirname "$0")/lib.sh"

clock=${BENCH_CLOCK:-icount}
case $clock in
icount) export QEMU_ICOUNT=1; runtime=${BENCH_RUNTIME:-1} ;;
wall) export QEMU_ICOUNT=0; runtime=${BENCH_RUNTIME:-8} ;;
*) rl_die "BENCH_CLOCK is icount or wall, not $clock" ;;
esac

profile=${KERNEL:-release}
case $profile in
release | debian) ;;
*) rl_die "KERNEL=$profile: release (default) or debian" ;;
esac
"$RL_TOP/scripts/chroot.sh" >&2
rl_kernel "$profile" >/dev/null
"$RL_TOP/scripts/build-module.sh" "$profile" "$RL_TOP/build/$profile" >/dev/null ||
	rl_die "building rust_loop.ko failed"
"$RL_TOP/scripts/build-tests.sh" "$RL_TOP/build/tests" >&2 ||
	rl_die "building the test programs (loopbench) failed"

# The ublk peer's daemon; without it the bench leaves ublk out and says so.
"$RL_TOP/scripts/build-rublk.sh" "$RL_TOP/build/rublk" ||
	rl_log "rublk could not be built: make bench leaves the ublk peer out"

if [ -n "${BENCH_PERF:-}" ]; then
	"$RL_TOP/scripts/build-perf.sh" "$RL_TOP/build/perf" || rl_die "building perf failed"
fi

mkdir -p "$RL_TOP/build/bench"
log=$RL_TOP/build/bench/$(date -u +%Y%m%d-%H%M%S).txt
{
	echo "# make bench $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$RL_TOP" describe --always --dirty 2>/dev/null || echo unknown)"
	echo "# KERNEL=$profile BENCH_CLOCK=$clock BENCH_ROUNDS=${BENCH_ROUNDS:-3} BENCH_RUNTIME=$runtime${BENCH_PROFILES:+ BENCH_PROFILES=$BENCH_PROFILES}${BENCH_PERF:+ BENCH_PERF=$BENCH_PERF}"
} | tee "$log"
args="-r ${BENCH_ROUNDS:-3} -t $runtime -k $RL_TOP/build/$profile/rust_loop.ko -c $clock"
if [ -z "${BENCH_SCALE:-}" ]; then
	"$RL_TOP/scripts/qemu.sh" --profile "$profile" --timeout 7200 -- \
		"tests/bench.sh $args -n ${BENCH_CTL:-256} -m ${BENCH_MEM:-1000} -p '${BENCH_PROFILES:-.}'" \
		"${BENCH_PERF:+-f '$BENCH_PERF'}" | tee -a "$log"
	rl_log "output kept in $log"
	exit 0
fi

# The scaling rows: one boot per vCPU count, then one table of them all.
for n in $BENCH_SCALE; do
	echo "# BENCH_SCALE: $n vCPUs" | tee -a "$log"
	QEMU_SMP=$n "$RL_TOP/scripts/qemu.sh" --profile "$profile" --timeout 7200 -- \
		"tests/bench.sh $args -s -p '${BENCH_PROFILES:-.}'" | tee -a "$log"
done
echo
awk "$(cat "$RL_TOP/tests/bench_stats.awk")"'
	NF == 4 && $2 ~ /-j[0-9]+$/ && $3 ~ /^[0-9]+$/ {
		base = $2; sub(/-j[0-9]+$/, "", base); n = substr($2, length(base) + 3)
		row = base " " $1
		if (!(row in seen)) { seen[row] = 1; byrow[++nr] = row }
		if (!(n in ns)) { ns[n] = 1; cols[++nc] = n }
		k = ++cnt[row, n]; v[row, n, k] = $4
	}
	END {
		for (i = 2; i <= nc; i++)
			for (j = i; j > 1 && cols[j - 1] + 0 > cols[j] + 0; j--) { t = cols[j]; cols[j] = cols[j - 1]; cols[j - 1] = t }
		printf "%-30s %-6s", "scaling", "target"
		for (c = 1; c <= nc; c++) printf " %9s", "N=" cols[c]
		printf " %9s\n", "N=" cols[nc] "/N=" cols[1]
		for (r = 1; r <= nr; r++) {
			split(byrow[r], f, " ")
			printf "%-30s %-6s", f[1], f[2]
			for (c = 1; c <= nc; c++) {
				m[c] = ""
				if (cnt[byrow[r], cols[c]]) {
					delete a
					for (k = 1; k <= cnt[byrow[r], cols[c]]; k++) a[k] = v[byrow[r], cols[c], k]
					m[c] = median(a, cnt[byrow[r], cols[c]])
				}
				printf " %9s", m[c] == "" ? "-" : sprintf("%.0f", m[c])
			}
			# Parenthesized: a bare ">" after printf would redirect.
			printf " %9s\n", (m[1] > 0 && m[nc] != "" ? sprintf("%.2f", m[nc] / m[1]) : "-")
		}
		print ""
		print "Guest ns per I/O with N fio jobs on N vCPUs, one job per CPU (1e9 / the summed IOPS:"
		print "under icount, guest instructions per I/O summed over all CPUs); medians over the rounds."
	}' "$log" | tee -a "$log"
rl_log "output kept in $log"
