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
#
# Both need cgroup v2 with the io and memory controllers
# (configs/base.config); without them the cases are skipped.

. "$(dirname "$0")/lib.sh"

work=$T_SCRATCH/cgroup-test
cg=/sys/fs/cgroup
grp=$cg/rl_loop_test
dev=

cleanup() {
	[ -n "$dev" ] && losetup -d "$dev" 2>/dev/null
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

if ! cgroup_setup; then
	t_skip "I/O through a direct loop device is charged to the writer's blkcg on the backing disk" "no cgroup v2 io and memory controllers"
	t_skip "page cache of a buffered loop device's backing file is charged to the writer's memcg" "no cgroup v2 io and memory controllers"
	t_done
fi
t_check "I/O through a direct loop device is charged to the writer's blkcg on the backing disk (io.stat)" blkcg_case
t_check "page cache of a buffered loop device's backing file is charged to the writer's memcg (memory.stat)" memcg_case
t_done
