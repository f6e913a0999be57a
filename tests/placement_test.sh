#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The hazards of rust_loop's worker placement (sys/placement.rs): a
# device's list of requests runs on the submitting CPU until the worker
# finds the submitter preempted for it, then on the next online
# housekeeping CPU for a while. The list is one work item, now queued on
# one CPU, now on another, and the CPU it goes to may go offline.
#
#  - one task writes at depth 32 (io_uring, 4 KiB random, crc32c verify
#    headers), bound to CPU 0 beside a busy loop on the same CPU, so that
#    it is runnable, not asleep, when the worker starts: every block
#    reads back as written, no splat; for rust_loop the device's
#    worker_elsewhere counter shows that the list did go to another CPU
#    (else the case did not test what it says);
#  - the same while CPU 1 goes offline and comes back, over and over: the
#    CPU the list is queued on may be going away (work queued on a CPU
#    that goes offline runs on another). Every block reads back as
#    written, no splat, the list went elsewhere.
#  - 64 short-lived processes write through a device one after the other,
#    then it is detached: the task references the worker takes (the task
#    that woke it, to look whether it still runs) are all given back, so
#    the task_struct slab (/proc/slabinfo) does not keep the 64 exited
#    tasks (it grows by fewer than 32 objects). Where KASAN's quarantine
#    keeps freed objects in the slab (the test kernel), the suite's
#    kmemleak result stands in (it reports some of the task_structs whose
#    reference is never dropped); where there is no /proc/slabinfo (the
#    release kernel), nothing does.
#
# loop.ko runs the same I/O (its workqueue is unbound: it has no such
# hazard, which proves the cases honest). Needs 2 CPUs and fio; the
# hotplug case needs CPU 1 to be hot-pluggable (skipped otherwise).

. "$(dirname "$0")/lib.sh"

work=$T_SCRATCH/placement-test
img=/dev/shm/rl-placement.img
dev= hog= plug=
cases=("writes at depth beside a busy task: read back as written"
	"the same while CPU 1 goes offline and back: read back as written"
	"64 exited submitters: no task_struct kept")
cpu1=/sys/devices/system/cpu/cpu1/online

cleanup() {
	[ -n "$plug" ] && kill "$plug" 2>/dev/null && wait "$plug" 2>/dev/null
	[ -n "$hog" ] && kill "$hog" 2>/dev/null && wait "$hog" 2>/dev/null
	[ -w "$cpu1" ] && echo 1 >"$cpu1" 2>/dev/null
	[ -n "$dev" ] && losetup -d "$dev" 2>/dev/null
	rm -rf "$work" "$img"
}
trap cleanup EXIT

why=
[ "$(nproc --all)" -ge 2 ] || why="fewer than 2 CPUs"
command -v fio >/dev/null || why="no fio"
if [ -n "$why" ]; then
	for c in "${cases[@]}"; do t_skip "placement: $c" "$why"; done
	t_done
fi
mkdir -p "$work"
truncate -s 64M "$img"

# io_beside_hog: random writes at depth 32 with verify headers from CPU 0,
# a busy loop on CPU 0 beside them, then every block read back and
# checked; the device's worker_elsewhere grew (rust_loop).
io_beside_hog() {
	local before after rc=0
	dev=$(losetup --direct-io=on -f --show "$img") || { t_diag "losetup failed"; return 1; }
	before=$(worker_elsewhere "$dev")
	taskset -c 0 bash -c 'while :; do :; done' &
	hog=$!
	taskset -c 0 fio --name=placement --filename="$dev" --direct=1 \
		--ioengine=io_uring --iodepth=32 --rw=randwrite --bs=4k --size=16M \
		--verify=crc32c --verify_fatal=1 --do_verify=1 \
		--output="$work/fio.log" >/dev/null 2>&1 || rc=1
	kill "$hog" && wait "$hog" 2>/dev/null
	hog=
	after=$(worker_elsewhere "$dev")
	losetup -d "$dev"
	dev=
	[ "$rc" = 0 ] || { t_diag "fio failed:" "$(tail -20 "$work/fio.log")"; return 1; }
	if [ "${LOOP_DRIVER:-rust}" != c ] && [ "$after" -le "$before" ]; then
		t_diag "worker_elsewhere $before before, $after after: the list never left CPU 0"
		return 1
	fi
}

case_hog() {
	kmsg_mark=$(dmesg | wc -l)
	io_beside_hog && kmsg_clean
}
t_check "placement: ${cases[0]}" case_hog

case_hotplug() {
	local rc=0
	kmsg_mark=$(dmesg | wc -l)
	(
		while :; do
			echo 0 >"$cpu1" || exit 1
			sleep 0.2
			echo 1 >"$cpu1" || exit 1
			sleep 0.2
		done
	) &
	plug=$!
	io_beside_hog || rc=1
	if ! kill "$plug" 2>/dev/null; then
		t_diag "CPU 1 could not be taken offline or brought back"
		rc=1
	fi
	wait "$plug" 2>/dev/null
	plug=
	echo 1 >"$cpu1"
	kmsg_clean || rc=1
	return $rc
}
if [ -w "$cpu1" ] && echo 0 >"$cpu1" 2>/dev/null && echo 1 >"$cpu1"; then
	t_check "placement: ${cases[1]}" case_hotplug
else
	t_skip "placement: ${cases[1]}" "CPU 1 cannot go offline here"
fi

# tasks: the task_struct slab's active objects.
tasks() { awk '$1 == "task_struct" { print $2 }' /proc/slabinfo; }

case_exited() {
	local before after i
	dev=$(losetup --direct-io=on -f --show "$img") || { t_diag "losetup failed"; return 1; }
	before=$(tasks)
	for ((i = 0; i < 64; i++)); do
		dd if=/dev/zero of="$dev" bs=4k count=4 seek=$((i * 4)) oflag=direct status=none ||
			{ t_diag "dd $i failed"; return 1; }
	done
	losetup -d "$dev"
	dev=
	sleep 1
	after=$(tasks)
	if [ $((after - before)) -ge 32 ]; then
		t_diag "task_struct: $before active objects before 64 submitters, $after after"
		return 1
	fi
}
if grep -qw kasan_report /proc/kallsyms; then
	t_skip "placement: ${cases[2]}" "KASAN's quarantine keeps freed task_structs in the slab"
elif [ -n "$(tasks)" ]; then
	t_check "placement: ${cases[2]}" case_exited
else
	t_skip "placement: ${cases[2]}" "no task_struct slab in /proc/slabinfo"
fi

t_done
