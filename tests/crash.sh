#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# fsync is durable (issue 12 item 5): what a loop device acknowledged as
# durable is in its backing file after a crash. Not one of the programs
# tests/run.sh runs: it needs two boots on one persistent disk, which
# scripts/check.sh (crash_pair) gives it. The first boot, `write`, runs
# on a fresh disk /dev/vdb; the second, `verify`, on the same disk after
# the first boot crashed.
#
#   tests/crash.sh write|verify NONCE
#
# write: an ext4 on /dev/vdb holds two backing files, bound with
# --direct-io=off and on. The disk's periodic and background writeback
# is turned off, and a holder keeps each device open, so nothing reaches
# the disk unless someone asks. Into each device go five regions of 1 MiB
# of text unique to the region and NONCE:
#   fsync   buffered writes, then fsync (dd conv=fsync)
#   osync   O_SYNC writes
#   dsync   O_DSYNC writes
#   fua     O_DIRECT|O_DSYNC writes (REQ_FUA)
#   lost    buffered writes, never synced: the control
# then the guest crashes (sysrq b: no sync, no unmount). The status is
# written first, so the boot counts as a command that ended well.
#
# verify: mounts the disk (ext4 replays its journal) and compares each
# region of each backing file: the four synced ones must hold their data;
# the control must not, or the crash lost nothing and proved nothing.
# Prints TAP lines ("ok - rust_loop: crash_test: ...").

. "$(dirname "$0")/lib.sh"

phase=${1:?usage: $0 write|verify NONCE}
nonce=${2:?usage: $0 write|verify NONCE}
disk=/dev/vdb
mnt=/tmp/crash
modes="buffered direct"
regions="fsync osync dsync fua lost"
prefix="$(drv_name): crash_test"

# The 1 MiB of text of region $1 of mode $2.
text() {
	seq -f "$nonce $2 $1 %010g" 0 40000 | head -c 1M
}

# Offset of region $1 in MiB (a gap of 1 MiB between regions).
region_mib() {
	local i=0 r
	for r in $regions; do
		[ "$r" = "$1" ] && { echo $((2 * i + 1)); return; }
		i=$((i + 1))
	done
}

mkdir -p "$mnt"
case $phase in
write)
	[ -b $disk ] || { echo "crash.sh: no $disk" >&2; exit 1; }
	mkfs.ext4 -q -F $disk && mount $disk "$mnt" || exit 1
	# Nothing is written back unless asked: no flusher timer, no
	# background or throttled writeback below 90 % of memory.
	echo 0 >/proc/sys/vm/dirty_writeback_centisecs
	echo 360000 >/proc/sys/vm/dirty_expire_centisecs
	echo 90 >/proc/sys/vm/dirty_background_ratio
	echo 90 >/proc/sys/vm/dirty_ratio
	drv_load || exit 1
	# The files exist on disk before anything is written into them.
	for m in $modes; do
		fallocate -l 16M "$mnt/backing-$m" || exit 1
	done
	sync
	for m in $modes; do
		f=$mnt/backing-$m
		dio=off
		[ "$m" = direct ] && dio=on
		dev=$(losetup -f --show --direct-io=$dio "$f") || exit 1
		# A holder: the last close of the device would write back its
		# page cache, the control region included.
		exec {holder}<"$dev"
		for r in $regions; do
			case $r in
			fsync) flags=(conv=fsync) ;;
			osync) flags=(oflag=sync) ;;
			dsync) flags=(oflag=dsync) ;;
			fua) flags=(oflag=direct,dsync) ;;
			lost) flags=() ;;
			esac
			text "$r" "$m" | dd of="$dev" bs=64k seek="$(region_mib "$r")M" \
				iflag=fullblock oflag=seek_bytes "${flags[@]}" status=none || exit 1
		done
		echo "# $m: $dev on $f, $(cat /sys/block/"${dev#/dev/}"/loop/dio) dio"
	done
	echo "# writes done; crashing"
	# The command ended well; the crash is its intended end.
	echo 0 >/run/rl/status.tmp && mv /run/rl/status.tmp /run/rl/status
	echo b >/proc/sysrq-trigger
	sleep 60
	exit 1
	;;
verify)
	if ! mount $disk "$mnt"; then
		t_fail "$prefix: the disk mounts after the crash"
		t_done
	fi
	for m in $modes; do
		f=$mnt/backing-$m
		for r in $regions; do
			if [ ! -f "$f" ]; then
				same=no
			elif cmp -s <(text "$r" "$m") \
				<(dd if="$f" bs=1M skip="$(region_mib "$r")" count=1 status=none); then
				same=yes
			else
				same=no
			fi
			if [ "$r" = lost ]; then
				if [ $same = no ]; then
					t_ok "$prefix: $m: unsynced writes are lost (the crash is real)"
				else
					t_fail "$prefix: $m: unsynced writes are lost (the crash is real)"
				fi
			elif [ $same = yes ]; then
				t_ok "$prefix: $m: $r writes survive a crash"
			else
				t_fail "$prefix: $m: $r writes survive a crash"
			fi
		done
	done
	umount "$mnt"
	t_done
	;;
esac
