#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Loop devices stacked on loop devices and on other block devices, with
# direct backing I/O, where a request of the upper device becomes bios of
# the lower one:
#
#  - a file under three and under two loop devices, every level with
#    --direct-io=on: the top device reads back the file after the page
#    cache was dropped, and a pattern written through the top with
#    O_DIRECT reaches the file. A driver that submits backing I/O from
#    queue_rq does it inside the submitter's plug flush, and the lower
#    device's request is added to the plug list being flushed: a KASAN
#    null-ptr-deref in blk_add_rq_to_plug / blk_mq_dispatch_list (the
#    oops of issue 9, item 3).
#  - a loop device over a scsi_debug disk (a real blk-mq device), direct.
#  - ext4 on a loop device whose backing file lives on ext4, direct, under
#    mixed random read/write/fsync load with crc32c verify, then fsck.
#    Locks of the same classes (ext4 inode and journal locks) are taken at
#    both levels; the kernel log must stay free of lockdep reports.
#
#  - many requests of a loop device stacked on another one, and of a
#    device whose backing store hangs, with the drivers loaded with
#    hw_queue_depth=1024: a buffered loop device over a file on ext4 on a
#    direct loop device, 2048 random O_DIRECT reads in flight on it with a
#    cold cache, completes and reads back the file. A driver with one
#    workqueue for all its devices (1024 active work items) deadlocks:
#    every active item waits for a read of the lower device queued behind
#    them in the same workqueue. Then a device over a file on a frozen
#    ext4 (fsfreeze) with 2048 writes waiting in it: another device keeps
#    serving I/O, and after the thaw the waiting writes complete and
#    verify (issue 9, item 2).
#
#  - device-mapper on a read-only loop device (losetup -r), buffered and
#    direct, under a dm-linear table loaded read-write. device-mapper opens
#    its devices for writing without checking read-only
#    (bdev_file_open_by_dev), so writes, discards and write-zeroes sent to
#    the dm device reach the loop driver as bios. Every one must fail with
#    EIO and leave the backing file as it was: loop.c fails every
#    op_is_write() request of a read-only device; a driver that refuses
#    only writes lets discard and write-zeroes punch holes through
#    fallocate, which does not check that the file was opened for writing
#    (issue 23, item 1).
#
# Every case also checks that nothing new in the kernel log looks like a
# splat, so a failure is attributed to its case (scripts/check.sh checks
# the whole log again at the end).

. "$(dirname "$0")/lib.sh"

work=$T_SCRATCH/stack-test
mnt=$T_SCRATCH/mnt-stack
devs=()
sdbg=
frozen=
bg=

hung_timeout=$(cat /proc/sys/kernel/hung_task_timeout_secs 2>/dev/null)

dm=rl-stack-test

cleanup() {
	local i
	[ -n "$frozen" ] && fsfreeze -u "$frozen"
	dmsetup remove "$dm" 2>/dev/null
	[ -n "$hung_timeout" ] && echo "$hung_timeout" >/proc/sys/kernel/hung_task_timeout_secs
	[ -n "$bg" ] && wait $bg
	mountpoint -q "$mnt" && umount "$mnt"
	# Top of a stack first: a lower device is busy while one above holds it.
	for ((i = ${#devs[@]} - 1; i >= 0; i--)); do
		losetup -d "${devs[i]}" 2>/dev/null
	done
	devs=()
	[ -n "$sdbg" ] && modprobe -r scsi_debug 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work" "$mnt"
kmsg_mark=$(dmesg | wc -l)

# attach_dio BACKING: a loop device over BACKING with direct I/O; prints it.
attach_dio() {
	local dev
	dev=$(losetup -f --show --direct-io=on "$1") || return 1
	if [ "$(cat "/sys/block/${dev#/dev/}/loop/dio")" != 1 ]; then
		t_diag "$dev over $1: loop/dio is not 1"
		losetup -d "$dev"
		return 1
	fi
	echo "$dev"
}

# stack N: the backing file under N loop devices, every one direct; the
# top reads the file back after a cache drop, then a new pattern written
# through the top with O_DIRECT is in the file.
stack() {
	local n=$1 img=$work/stack$1.img below top i
	dd if=/dev/urandom of="$img" bs=1M count=8 status=none || return 1
	below=$img
	for ((i = 0; i < n; i++)); do
		top=$(attach_dio "$below") || { t_diag "losetup over $below failed"; return 1; }
		devs+=("$top")
		below=$top
	done
	echo 3 >/proc/sys/vm/drop_caches
	if ! cmp "$top" "$img"; then
		t_diag "$top (top of $n) differs from $img"
		return 1
	fi
	dd if=/dev/urandom of="$work/pattern" bs=1M count=8 status=none &&
		dd if="$work/pattern" of="$top" bs=64k oflag=direct conv=fsync \
			status=none || { t_diag "writing through $top failed"; return 1; }
	echo 3 >/proc/sys/vm/drop_caches
	if ! cmp "$img" "$work/pattern"; then
		t_diag "$img differs from the pattern written through $top"
		return 1
	fi
	for ((i = ${#devs[@]} - 1; i >= 0; i--)); do
		losetup -d "${devs[i]}" || { t_diag "losetup -d ${devs[i]} failed"; return 1; }
	done
	devs=()
	rm -f "$img" "$work/pattern"
	kmsg_clean
}

# on_blockdev: a loop device over a scsi_debug disk, direct; a pattern
# written through the loop device is on the disk, and reads back.
on_blockdev() {
	local disk dev i
	modprobe scsi_debug dev_size_mb=16 || { t_diag "modprobe scsi_debug failed"; return 1; }
	sdbg=1
	disk=$(scsi_debug_disk) || { t_diag "no scsi_debug disk appeared"; return 1; }
	dev=$(attach_dio "$disk") || { t_diag "losetup over $disk failed"; return 1; }
	devs+=("$dev")
	dd if=/dev/urandom of="$work/pattern" bs=1M count=8 status=none &&
		dd if="$work/pattern" of="$dev" bs=64k oflag=direct conv=fsync \
			status=none || { t_diag "writing through $dev failed"; return 1; }
	echo 3 >/proc/sys/vm/drop_caches
	if ! cmp -n 8M "$disk" "$work/pattern"; then
		t_diag "$disk differs from the pattern written through $dev"
		return 1
	fi
	if ! cmp -n 8M "$dev" "$work/pattern"; then
		t_diag "$dev does not read back the pattern"
		return 1
	fi
	losetup -d "$dev" || return 1
	devs=()
	modprobe -r scsi_debug || { t_diag "modprobe -r scsi_debug failed"; return 1; }
	sdbg=
	kmsg_clean
}

# ext4_on_ext4: mkfs.ext4 on a direct loop device over a file on the
# scratch ext4, then fio with mixed random reads and writes, fsync every
# few writes and crc32c verify on a file in it, umount, fsck clean.
ext4_on_ext4() {
	local img=$work/ext4.img dev log=$work/fio.log size
	# 512 KiB per job in the quick tier: with an fsync every few writes,
	# each a journal commit through both file systems, 2 MiB took 33 s.
	size=$(tier 512k 2M 2M)
	truncate -s 32M "$img" || return 1
	dev=$(attach_dio "$img") || { t_diag "losetup failed"; return 1; }
	devs+=("$dev")
	mkfs.ext4 -q -F "$dev" || { t_diag "mkfs.ext4 $dev failed"; return 1; }
	mount "$dev" "$mnt" || { t_diag "mount $dev failed"; return 1; }
	if ! fio --name=mixed --directory="$mnt" --size="$size" --numjobs=2 \
		--ioengine=psync --rw=randrw --rwmixread=50 --bs=4k --fsync=4 \
		--verify=crc32c --verify_state_save=0 --verify_fatal=1 --do_verify=1 \
		--group_reporting >"$log" 2>&1; then
		t_diag "fio on ext4 over $dev failed:" "$(tail -30 "$log")"
		return 1
	fi
	if ! fio --name=mixed-direct --directory="$mnt" --size="$size" --numjobs=2 \
		--ioengine=libaio --iodepth=8 --direct=1 --rw=randrw --bs=4k \
		--fsync=8 --verify=crc32c --verify_state_save=0 --verify_fatal=1 --do_verify=1 \
		--group_reporting >"$log" 2>&1; then
		t_diag "fio O_DIRECT on ext4 over $dev failed:" "$(tail -30 "$log")"
		return 1
	fi
	umount "$mnt" || { t_diag "umount failed"; return 1; }
	if ! fsck.ext4 -fn "$dev" >"$log" 2>&1; then
		t_diag "fsck.ext4 -fn $dev:" "$(cat "$log")"
		return 1
	fi
	losetup -d "$dev" || return 1
	devs=()
	rm -f "$img"
	kmsg_clean
}

# inflight_at_least DEV N: within 60 s, DEV has N requests in flight.
inflight_at_least() {
	local i r w
	for ((i = 0; i < 600; i++)); do
		read -r r w <"/sys/block/${1#/dev/}/inflight"
		[ $((r + w)) -ge "$2" ] && return 0
		nap 0.1
	done
	t_diag "$1: $((r + w)) requests in flight after 60 s, want >= $2"
	return 1
}

# deep_stacked: 2048 cold random reads on a buffered loop device over a
# file on ext4 on a direct loop device (see the header).
deep_stacked() {
	local low up log=$work/fio.log
	truncate -s 64M "$work/lower.img" || return 1
	low=$(attach_dio "$work/lower.img") || { t_diag "losetup failed"; return 1; }
	devs+=("$low")
	mkfs.ext4 -q -F "$low" && mount "$low" "$mnt" || { t_diag "mkfs/mount $low failed"; return 1; }
	dd if=/dev/urandom of="$mnt/upper.img" bs=1M count=16 status=none || return 1
	sync && echo 3 >/proc/sys/vm/drop_caches
	up=$(losetup -f --show --direct-io=off "$mnt/upper.img") || { t_diag "losetup failed"; return 1; }
	devs+=("$up")
	# A deadlock leaves fio in uninterruptible sleep: give up after 300 s
	# rather than wait for it.
	fio --name=deep --filename="$up" --direct=1 --ioengine=libaio \
		--iodepth=512 --numjobs=4 --rw=randread --bs=4k --size=16M \
		--io_size=2M --group_reporting >"$log" 2>&1 &
	bg=$!
	if ! wait_gone $bg 300; then
		t_diag "fio on $up (over ext4 on $low) still running after 300 s:" \
			"$(grep -E 'blocked for more than|deadlock' <(dmesg) | tail -5)"
		bg=
		return 1
	fi
	wait $bg || { t_diag "fio on $up failed:" "$(tail -20 "$log")"; bg=; return 1; }
	bg=
	echo 3 >/proc/sys/vm/drop_caches
	cmp "$up" "$mnt/upper.img" || { t_diag "$up does not read back its backing file"; return 1; }
	losetup -d "$up" && umount "$mnt" && losetup -d "$low" || return 1
	devs=()
	rm -f "$work/lower.img"
	kmsg_clean
}

# frozen_neighbour: writes waiting on a frozen backing file system do not
# stop another device (see the header).
frozen_neighbour() {
	local low lf ln log=$work/fio.log dd_pid ok=1
	truncate -s 48M "$work/lower.img" && truncate -s 8M "$work/other.img" || return 1
	low=$(attach_dio "$work/lower.img") || { t_diag "losetup failed"; return 1; }
	devs+=("$low")
	mkfs.ext4 -q -F "$low" && mount "$low" "$mnt" || { t_diag "mkfs/mount $low failed"; return 1; }
	fallocate -l 8M "$mnt/frozen.img" || return 1
	lf=$(attach_dio "$mnt/frozen.img") || { t_diag "losetup failed"; return 1; }
	devs+=("$lf")
	ln=$(attach_dio "$work/other.img") || { t_diag "losetup failed"; return 1; }
	devs+=("$ln")
	# The writes are held up on purpose, for up to two minutes under TCG:
	# not a hang for the hung-task detector (restored after the thaw).
	[ -n "$hung_timeout" ] && echo 600 >/proc/sys/kernel/hung_task_timeout_secs
	fsfreeze -f "$mnt" || { t_diag "fsfreeze -f $mnt failed"; return 1; }
	frozen=$mnt
	# Two jobs of 1024 writes, each in a 4 MiB region of its own (verify
	# needs that), all in flight at once.
	fio --name=frozen --filename="$lf" --direct=1 --ioengine=libaio \
		--iodepth=1024 --numjobs=2 --rw=randwrite --bs=4k --size=4M \
		--offset_increment=4M --verify=crc32c --verify_state_save=0 --verify_fatal=1 \
		--do_verify=1 --group_reporting >"$log" 2>&1 &
	bg=$!
	inflight_at_least "$lf" 1024 || ok=
	dd if=/dev/urandom of="$work/pattern" bs=64k count=16 status=none
	dd if="$work/pattern" of="$ln" bs=64k oflag=direct status=none &
	dd_pid=$!
	if ! wait_gone $dd_pid 60; then
		t_diag "a write to $ln waited more than 60 s for the writes stuck on $lf"
		ok=
	fi
	fsfreeze -u "$mnt" && frozen=
	[ -n "$hung_timeout" ] && echo "$hung_timeout" >/proc/sys/kernel/hung_task_timeout_secs
	wait $dd_pid || { t_diag "dd to $ln failed"; ok=; }
	cmp -n 1M "$ln" "$work/pattern" || { t_diag "$ln does not read back the pattern"; ok=; }
	if ! wait_gone $bg 300; then
		t_diag "fio on $lf still running 300 s after the thaw"
		bg=
		return 1
	fi
	wait $bg || { t_diag "fio on $lf failed after the thaw:" "$(tail -20 "$log")"; ok=; }
	bg=
	losetup -d "$ln" && losetup -d "$lf" && umount "$mnt" && losetup -d "$low" || return 1
	devs=()
	rm -f "$work/lower.img" "$work/other.img" "$work/pattern"
	kmsg_clean && [ -n "$ok" ]
}

# wait_gone PID SECONDS: PID (a child) ended within SECONDS.
wait_gone() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		kill -0 "$1" 2>/dev/null || return 0
		nap 0.1
	done
	return 1
}

if [ "$(tier 0 1 1)" = 0 ]; then
	t_skip "three stacked loop devices, all direct: read and write through the top" "quick tier (two are)"
else
	t_check "three stacked loop devices, all direct: read and write through the top" stack 3
fi
t_check "two stacked loop devices, both direct: read and write through the top" stack 2
t_check "loop device over a scsi_debug disk, direct: write and read back" on_blockdev
t_check "ext4 on a direct loop device on ext4: mixed read/write/fsync, verify, fsck" ext4_on_ext4

# readonly_under_linear [LOSETUP OPTIONS]: the device-mapper case above.
readonly_under_linear() {
	local img=$work/ro.img before after rc=0 sectors node dev
	dmsetup remove "$dm" 2>/dev/null
	dd if=/dev/urandom of="$img" bs=1M count=4 status=none || return 1
	before=$(sha256sum <"$img")
	dev=$(losetup -r -f --show "$@" "$img") || { t_diag "losetup -r $* failed"; return 1; }
	devs+=("$dev")
	sectors=$(blockdev --getsz "$dev") || return 1
	dmsetup create "$dm" --noudevsync --table "0 $sectors linear $dev 0" ||
		{ t_diag "dmsetup create over $dev failed"; return 1; }
	node=/dev/$(dmsetup info -c --noheadings -o blkdevname "$dm") || return 1
	[ -b "$node" ] || { t_diag "no $node"; return 1; }
	if [ "$(blockdev --getro "$node")" != 0 ]; then
		t_diag "$node is read-only: the case needs a writable table"
		return 1
	fi
	fails_with "Input/output error" dd if=/dev/zero of="$node" bs=4k count=4 oflag=direct status=none || rc=1
	fails_with "Input/output error" blkdiscard -o 0 -l 1M "$node" || rc=1
	fails_with "Input/output error" blkdiscard -z -o 1M -l 1M "$node" || rc=1
	dmsetup remove "$dm" || rc=1
	losetup -d "$dev" || rc=1
	unset 'devs[-1]'
	after=$(sha256sum <"$img")
	if [ "$before" != "$after" ]; then
		t_diag "the backing file changed under a read-only loop device"
		rc=1
	fi
	kmsg_clean || rc=1
	return $rc
}

if modprobe dm_mod 2>/dev/null && command -v dmsetup >/dev/null; then
	t_check "dm-linear on a read-only loop device: writes, discards, write-zeroes fail with EIO, file unchanged" \
		readonly_under_linear
	t_check "dm-linear on a read-only direct-I/O loop device: the same" \
		readonly_under_linear --direct-io=on
else
	t_skip "dm-linear on a read-only loop device: writes, discards, write-zeroes fail with EIO, file unchanged" "no device-mapper"
	t_skip "dm-linear on a read-only direct-I/O loop device: the same" "no device-mapper"
fi
# Thousands of requests in flight: not in the quick tier.
if [ "$(tier 0 1 1)" = 0 ]; then
	t_skip "2048 cold reads on a buffered loop over ext4 on a loop device (hw_queue_depth=1024) complete" "quick tier"
	t_skip "writes stuck on a frozen backing file system do not stop another device; they complete after the thaw" "quick tier"
elif drv_reload hw_queue_depth=1024; then
	t_check "2048 cold reads on a buffered loop over ext4 on a loop device (hw_queue_depth=1024) complete" deep_stacked
	t_check "writes stuck on a frozen backing file system do not stop another device; they complete after the thaw" frozen_neighbour
	drv_reload || t_fail "$(drv_name) reloads with its default parameters"
else
	t_fail "$(drv_name) loads with hw_queue_depth=1024"
fi
t_done
