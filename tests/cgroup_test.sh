#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Loop I/O is charged to the cgroup that issued it, as loop.c charges it
# (loop_queue_rq() takes the first bio's blkcg and the memory cgroup of the
# same cgroup; loop_handle_cmd() does the backing I/O under both): a
# container writing through a loop image stays inside its own io.max on
# the backing disk and its own memory.max. A driver whose worker does the
# backing I/O in its own name charges it all to the root cgroup.
#
#  - blkcg: a writer in a test cgroup writes 16 MiB with O_DIRECT through
#    a loop device with --direct-io=on; the test cgroup's io.stat counts
#    at least those 16 MiB of writes on the backing disk (not only on the
#    loop device), and the writes are not in a sibling cgroup's io.stat.
#  - memcg: the same through a buffered loop device over a new (sparse)
#    file; the backing file's new page cache, at least 12 of the 16 MiB
#    right after the write, is charged to the test cgroup's memory.stat
#    "file".
#  - isolation, both ways: a buffered loop device over a file in an ext4
#    that is then frozen; a write through it from the root cgroup (then
#    from the test cgroup) waits in the backing file system for the thaw,
#    and a read through the same device from the test cgroup (then from
#    the root cgroup) completes meanwhile. loop.c runs each cgroup's
#    requests on a worker of its own; rust_loop runs the root cgroup's
#    buffered requests in order on the device's list and every other
#    cgroup's in a work item each. A driver that ran them all on one list
#    would keep the read behind the write. After the thaw the write
#    completes and its data is in the backing file.
#  - the same, both ways, through a direct-I/O loop device over the same
#    file: a direct write waits for the thaw too (kiocb_start_write()),
#    and only the root cgroup's direct requests may share the device's
#    in-order list.
#
# All need cgroup v2 with the io and memory controllers
# (configs/base.config); without them the cases are skipped.

. "$(dirname "$0")/lib.sh"

work=$T_SCRATCH/cgroup-test
cg=/sys/fs/cgroup
grp=$cg/rl_loop_test
dev=

mnt=$work/mnt
frozen=
low=
ddev=

cleanup() {
	[ -n "$frozen" ] && fsfreeze -u "$frozen"
	wait
	[ -n "$dev" ] && losetup -d "$dev" 2>/dev/null
	[ -n "$ddev" ] && losetup -d "$ddev" 2>/dev/null
	mountpoint -q "$mnt" && umount "$mnt"
	[ -n "$low" ] && losetup -d "$low" 2>/dev/null
	rmdir "$grp" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work"

# cgroup_setup: cgroup v2 mounted, io and memory enabled for children, an
# empty test cgroup.
cgroup_setup() {
	if [ ! -e "$cg/cgroup.controllers" ]; then
		mount -t cgroup2 none "$cg" 2>/dev/null || return 1
	fi
	grep -qw io "$cg/cgroup.controllers" && grep -qw memory "$cg/cgroup.controllers" ||
		return 1
	echo "+io +memory" >"$cg/cgroup.subtree_control" || return 1
	rmdir "$grp" 2>/dev/null
	mkdir "$grp"
}

# in_cgroup CMD...: run CMD as a process of the test cgroup.
in_cgroup() {
	bash -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' in_cgroup "$grp" "$@"
}

# io_wbytes MAJ:MIN: the test cgroup's wbytes on that device (0 if none).
io_wbytes() {
	local l
	l=$(grep "^$1 " "$grp/io.stat")
	l=${l##*wbytes=}
	echo "${l%% *}" | grep -E '^[0-9]+$' || echo 0
}

# backing_devt FILE: MAJ:MIN of the block device FILE's file system is on.
backing_devt() {
	local d
	d=$(stat -c %d "$1") || return 1
	echo "$((d >> 8)):$((d & 255))"
}

blkcg_case() {
	local img=$work/dio.img bdev got
	truncate -s 32M "$img" || return 1
	bdev=$(backing_devt "$img") || return 1
	dev=$(losetup -f --show --direct-io=on "$img") || { t_diag "losetup failed"; return 1; }
	if [ "$(cat "/sys/block/${dev#/dev/}/loop/dio")" != 1 ]; then
		t_diag "$dev: loop/dio is not 1"
		return 1
	fi
	if ! in_cgroup dd if=/dev/zero of="$dev" bs=1M count=16 oflag=direct status=none; then
		t_diag "dd through $dev in the test cgroup failed"
		return 1
	fi
	got=$(io_wbytes "$bdev")
	losetup -d "$dev" && dev=
	if [ "$got" -lt $((16 << 20)) ]; then
		t_diag "test cgroup io.stat on the backing disk $bdev: wbytes=$got, want >= $((16 << 20))" \
			"io.stat:" "$(cat "$grp/io.stat")"
		return 1
	fi
	rm -f "$img"
}

memcg_case() {
	local img=$work/buffered.img file
	truncate -s 32M "$img" || return 1
	dev=$(losetup -f --show --direct-io=off "$img") || { t_diag "losetup failed"; return 1; }
	# O_DIRECT on the loop device: none of the loop device's own page
	# cache, only the backing file's (new pages, charged when created).
	if ! in_cgroup dd if=/dev/urandom of="$dev" bs=1M count=16 oflag=direct status=none; then
		t_diag "dd through $dev in the test cgroup failed"
		return 1
	fi
	file=$(awk '$1 == "file" { print $2 }' "$grp/memory.stat")
	losetup -d "$dev" && dev=
	if [ "${file:-0}" -lt $((12 << 20)) ]; then
		t_diag "test cgroup memory.stat file=$file, want >= $((12 << 20)) (the backing file's page cache)"
		return 1
	fi
	rm -f "$img"
}

# as WHO CMD... &: becomes CMD, in the root cgroup (WHO=root) or the test
# cgroup, so that $! is CMD's pid. Only in the background: it execs.
as() {
	local who=$1
	shift
	[ "$who" = root ] ||
		set -- bash -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' in_cgroup "$grp" "$@"
	exec "$@"
}

# iso_setup: a buffered loop device ($dev) and a direct one ($ddev) over a
# file of random data in an ext4 ($mnt) on a direct loop device ($low),
# made once for all isolation cases.
iso_setup() {
	[ -n "$dev" ] && return 0
	truncate -s 64M "$work/lower.img" || return 1
	low=$(losetup -f --show --direct-io=on "$work/lower.img") || return 1
	mkdir -p "$mnt"
	mkfs.ext4 -q -F "$low" && mount "$low" "$mnt" || { t_diag "mkfs/mount $low failed"; return 1; }
	head -c 8M /dev/urandom >"$mnt/store.img" && sync || return 1
	ddev=$(losetup -f --show --direct-io=on "$mnt/store.img") || return 1
	[ "$(cat "/sys/block/${ddev#/dev/}/loop/dio")" = 1 ] ||
		{ t_diag "$ddev did not turn direct I/O on"; return 1; }
	dev=$(losetup -f --show --direct-io=off "$mnt/store.img")
}

iso_teardown() {
	[ -n "$dev" ] && losetup -d "$dev" && dev=
	[ -n "$ddev" ] && losetup -d "$ddev" && ddev=
	mountpoint -q "$mnt" && umount "$mnt"
	[ -n "$low" ] && losetup -d "$low" && low=
	rm -f "$work/lower.img"
}

# isolation_case WRITER READER SEEK [direct]: WRITER's write of a zero
# 4 KiB block at block SEEK through $dev ($ddev with "direct") waits for
# the frozen backing file system; READER's read through the same device
# completes meanwhile (root/test cgroup, see the top); after the thaw the
# block is in the backing file.
isolation_case() {
	local writer=$1 reader=$2 seek=$3 wpid rpid i st done_before_thaw=0 rc=0
	iso_setup || return 1
	local dev=$dev
	[ "${4:-}" = direct ] && dev=$ddev
	fsfreeze -f "$mnt" || { t_diag "fsfreeze -f $mnt failed"; return 1; }
	frozen=$mnt
	# O_DIRECT on the loop device: each request reaches the driver at once.
	as "$writer" dd if=/dev/zero of="$dev" bs=4k count=1 seek="$seek" oflag=direct status=none &
	wpid=$!
	waits_in_kernel "$wpid" ||
		{ t_diag "the $writer write through $dev did not wait for the frozen $mnt"; rc=1; }
	as "$reader" dd if="$dev" of=/dev/null bs=4k count=1 skip=1024 iflag=direct status=none &
	rpid=$!
	for ((i = 0; i < 300; i++)); do
		st=$(task_state "$rpid")
		[ "$st" = gone ] || [ "$st" = Z ] && { done_before_thaw=1; break; }
		nap 0.1
	done
	if [ "$done_before_thaw" != 1 ]; then
		t_diag "the $reader read through $dev waited behind the $writer write for 30 s:" \
			"$(cat "/proc/$rpid/stack" 2>/dev/null | head -8)"
		rc=1
	fi
	fsfreeze -u "$mnt" && frozen=
	wait "$rpid" || { t_diag "the $reader read failed"; rc=1; }
	wait "$wpid" || { t_diag "the $writer write failed after the thaw"; rc=1; }
	cmp -s -n 4096 -i $((seek * 4096)) "$mnt/store.img" /dev/zero ||
		{ t_diag "the $writer write is not in the backing file"; rc=1; }
	return $rc
}

if ! cgroup_setup; then
	t_skip "I/O through a direct loop device is charged to the writer's blkcg on the backing disk" "no cgroup v2 io and memory controllers"
	t_skip "page cache of a buffered loop device's backing file is charged to the writer's memcg" "no cgroup v2 io and memory controllers"
	t_skip "a read from a cgroup is not held up by the root cgroup's write waiting in the backing file system" "no cgroup v2 io and memory controllers"
	t_skip "a read from the root cgroup is not held up by a cgroup's write waiting in the backing file system" "no cgroup v2 io and memory controllers"
	t_skip "direct I/O: a read from a cgroup is not held up by the root cgroup's write waiting in the backing file system" "no cgroup v2 io and memory controllers"
	t_skip "direct I/O: a read from the root cgroup is not held up by a cgroup's write waiting in the backing file system" "no cgroup v2 io and memory controllers"
	t_done
fi
t_check "I/O through a direct loop device is charged to the writer's blkcg on the backing disk (io.stat)" blkcg_case
t_check "page cache of a buffered loop device's backing file is charged to the writer's memcg (memory.stat)" memcg_case
t_check "a read from a cgroup is not held up by the root cgroup's write waiting in the backing file system" isolation_case root cgroup 16
t_check "a read from the root cgroup is not held up by a cgroup's write waiting in the backing file system" isolation_case cgroup root 32
t_check "direct I/O: a read from a cgroup is not held up by the root cgroup's write waiting in the backing file system" isolation_case root cgroup 48 direct
t_check "direct I/O: a read from the root cgroup is not held up by a cgroup's write waiting in the backing file system" isolation_case cgroup root 64 direct
iso_teardown
t_done
