#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# A loop device over a file whose file system returns short counts: a FUSE
# file (tests/fuse_short.c, direct_io) that moves at most N bytes per read
# or write call, so that every 4 KiB the loop driver asks for comes back
# short, by a count that is not a multiple of 512.
#
#  - N = 1000: reads through the loop device return the file's data, and
#    writes through it reach the file, byte for byte. A driver that
#    completes the 1000 bytes done with blk_update_request() moves the
#    request's data by 1000 bytes but its sector by 1, so the rest lands
#    488 bytes early: it must complete whole blocks only (512 here) and
#    retry the rest. loop.c does exactly that wrong for reads (and reports
#    a short write done without retrying at all): on loop.ko both cases
#    must find the data wrong, which shows that they can fail.
#  - N = 300: less than a block per call: reads and writes fail with EIO,
#    and nothing hangs (loop.ko completes them with shifted data; skipped).

. "$(dirname "$0")/lib.sh"

work=$T_SCRATCH/fuse-test
mnt=$T_SCRATCH/mnt-fuse
helper=$T_TOP/build/tests/fuse_short
dev=
pid=

stop_fs() {
	[ -n "$dev" ] && { losetup -d "$dev" 2>/dev/null; dev=; }
	mountpoint -q "$mnt" && umount "$mnt"
	[ -n "$pid" ] && { wait "$pid" 2>/dev/null; pid=; }
	return 0
}
cleanup() {
	stop_fs
	rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work" "$mnt"

if ! modprobe fuse 2>/dev/null || [ ! -x "$helper" ]; then
	t_skip "fuse: short reads" "no FUSE"
	t_skip "fuse: short writes" "no FUSE"
	t_skip "fuse: less than a block per call fails" "no FUSE"
	t_done
fi
kmsg_mark=$(dmesg | wc -l)

# start_fs MAX: the FUSE file system over $work/back, moving at most MAX
# bytes per call, and a loop device over its file as $dev.
start_fs() {
	local i
	"$helper" "$work/back" "$1" "$mnt" &
	pid=$!
	for ((i = 0; i < 100; i++)); do
		[ -f "$mnt/img" ] && break
		nap 0.1
	done
	[ -f "$mnt/img" ] || { t_diag "the FUSE file system did not come up"; return 1; }
	dev=$(losetup -f --show "$mnt/img") || { t_diag "losetup over FUSE failed"; return 1; }
}

short_reads() {
	dd if=/dev/urandom of="$work/back" bs=64k count=8 status=none || return 1
	start_fs 1000 || return 1
	dd if="$dev" of="$work/out" bs=64k iflag=direct status=none ||
		{ t_diag "reading $dev failed"; return 1; }
	stop_fs
	cmp "$work/out" "$work/back" || { t_diag "read back other data than the file's"; return 2; }
	kmsg_clean
}

short_writes() {
	truncate -s 0 "$work/back" && truncate -s 512k "$work/back" || return 1
	dd if=/dev/urandom of="$work/pattern" bs=64k count=8 status=none || return 1
	start_fs 1000 || return 1
	dd if="$work/pattern" of="$dev" bs=64k oflag=direct conv=fsync status=none ||
		{ t_diag "writing $dev failed"; return 1; }
	stop_fs
	cmp "$work/back" "$work/pattern" || { t_diag "the file holds other data than was written"; return 2; }
	kmsg_clean
}

less_than_a_block() {
	local rc=0
	dd if=/dev/urandom of="$work/back" bs=64k count=1 status=none || return 1
	start_fs 300 || return 1
	fails_with "Input/output error" dd if="$dev" of=/dev/null bs=4k count=1 iflag=direct status=none || rc=1
	fails_with "Input/output error" dd if=/dev/zero of="$dev" bs=4k count=1 oflag=direct status=none || rc=1
	stop_fs
	kmsg_clean || rc=1
	return $rc
}

if [ "${LOOP_DRIVER:-rust}" = c ]; then
	# corrupts CASE: CASE finds the data wrong (status 2), nothing else.
	corrupts() {
		local rc=0
		"$@" || rc=$?
		stop_fs
		[ $rc = 2 ]
	}
	t_check "fuse: short reads: loop.ko returns shifted data (loop.c advances by a byte count)" \
		corrupts short_reads
	t_check "fuse: short writes: loop.ko loses data (loop.c reports a short write done)" \
		corrupts short_writes
	t_skip "fuse: less than a block per call fails" \
		"loop.c completes such requests with shifted data"
	t_done
fi

t_check "fuse: short reads return the file's data" short_reads
t_check "fuse: short writes reach the file" short_writes
t_check "fuse: less than a block per call fails with EIO, no hang" less_than_a_block

t_done
