#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The scenarios of blktests' `loop` group (loop/001 to loop/011), written
# anew for this suite (blktests is GPL-3.0; none of its code is here): one
# case per scenario, asserting the outcome loop.c defines, that is what
# blktests compares with its .out files (partitions appearing and going,
# errnos, block sizes, data read back, uevents, kernel log lines), with
# this guest's tools: sfdisk and partx instead of parted, mkfs.ext2/ext4
# instead of mkfs.vfat/xfs, and tests/blktests_loop_helper.py for the
# ioctls no tool issues with a visible errno and for the races. The
# timing-only loop/003 becomes a functional check; the timed races
# (loop/006, loop/010) run for 3 s instead of 30 and 90 (30 s in the slow
# tier, skipped in the quick tier). Every case also checks the kernel log
# for splats.

. "$(dirname "$0")/lib.sh"

work=$T_SCRATCH/blktests-loop
mnt=$work/mnt
helper=$T_TOP/tests/blktests_loop_helper.py
sdbg=

cleanup() {
	mountpoint -q "$mnt" && umount "$mnt"
	mountpoint -q "$work/tmpfs" && umount "$work/tmpfs"
	timeout -k 5 60 losetup -D 2>/dev/null
	[ -n "$sdbg" ] && modprobe -r scsi_debug 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work" "$mnt"
kmsg_mark=$(dmesg | wc -l)
shopt -s nullglob

py() { python3 "$helper" "$@"; }

# want WHAT EXPECTED ACTUAL: equal, or a diagnostic and failure.
want() {
	[ "$2" = "$3" ] && return 0
	t_diag "$1: want '$2', got '$3'"
	return 1
}

# parts NAME: the partitions of loop device NAME in sysfs and in /dev, as
# "sys: loop0p1 loop0p2 dev: loop0p1 loop0p2".
parts() {
	local p s="sys:" d="dev:"
	for p in /sys/block/"$1"/"$1"p*; do s+=" ${p##*/}"; done
	for p in /dev/"$1"p*; do [ -b "$p" ] && d+=" ${p##*/}"; done
	echo "$s $d"
}

# The 1 MiB files of the cases (made at once: every exec costs).
truncate -s 1M "$work/file" "$work/file0" "$work/file1" || t_diag "making files failed"
# An 8 MiB image with a DOS table: p1 3 MiB at 1 MiB, p2 4 MiB at 4 MiB.
img=$work/parts.img
truncate -s 8M "$img" &&
	printf 'label: dos\nlabel-id: 0x0b1e7e57\nstart=2048, size=6144\nstart=8192, size=8192\n' |
	sfdisk -q "$img" >/dev/null || t_diag "making $img failed"

# The behaviour blktests loop/001 checks: losetup -P creates a device node
# and a sysfs node per partition, and detaching removes them all.
c001_partscan() {
	local dev n ok=0
	dev=$(losetup -P -f --show "$img") || return 1
	n=${dev#/dev/}
	want "partitions of $dev" "sys: ${n}p1 ${n}p2 dev: ${n}p1 ${n}p2" "$(parts "$n")" || ok=1
	sysread "/sys/block/$n/${n}p1/size"
	want "${n}p1 size" 6144 "$v" || ok=1
	sysread "/sys/block/$n/${n}p2/start"
	want "${n}p2 start" 8192 "$v" || ok=1
	losetup -d "$dev" || return 1
	want "partitions of $dev after detach" "sys: dev:" "$(parts "$n")" || ok=1
	kmsg_clean && return $ok
}

# The behaviour blktests loop/002 checks: LOOP_SET_BLOCK_SIZE to 4096,
# 2048, 1234, 1024 and 512 on a device over a 1 MiB file: the default is
# 512, each power of two takes effect (sysfs logical and physical block
# size and minimum I/O size) and a block written with O_DIRECT reads
# back; 1234 is EINVAL and leaves 2048. Then (not in blktests) twice the
# block layer's BLK_MAX_BLOCK_SIZE is EINVAL too (8192 on the project's
# kernels, where that is the page size; 131072 on Debian's, which has
# transparent huge pages and so 64 KiB), and 0 is the default again.
c002_block_sizes() {
	local dev out ok=0 big=8192
	[ -d /sys/kernel/mm/transparent_hugepage ] && big=131072
	dev=$(losetup -f --show "$work/file") || return 1
	out=$(py block_sizes "$dev" 4096 2048 1234 1024 512 "$big" 0)
	want "block sizes of $dev" \
		"default:512:dio=0 4096:OK:4096:dio=0:ok 2048:OK:2048:dio=0:ok 1234:EINVAL:2048:dio=0 1024:OK:1024:dio=0:ok 512:OK:512:dio=0:ok $big:EINVAL:512:dio=0 0:OK:512:dio=0:ok" \
		"$out" || ok=1
	losetup -d "$dev" || return 1
	kmsg_clean && return $ok
}

# The behaviour blktests loop/003 times: opening and closing an unbound
# device (here 500 times) works, leaves it unbound and empty, and
# creates no other device.
c003_open_close() {
	local dev n before ok=0
	dev=$(losetup -f) || return 1
	n=${dev#/dev/}
	before=$(loop_list)
	want "opening and closing $dev 500 times" ok "$(py open_close "$dev" 500)" || ok=1
	want "loop devices after" "$before" "$(loop_list)" || ok=1
	sysread "/sys/block/$n/size"
	want "$n size" 0 "$v" || ok=1
	want "$n bound" "<absent>" "$(sysread "/sys/block/$n/loop/backing_file"; echo "$v")" || ok=1
	kmsg_clean && return $ok
}

# The behaviour blktests loop/004 checks: over a disk of 4096-byte
# sectors (scsi_debug), block size 4096 then direct I/O on: dio is 1 and a
# block written with O_DIRECT reads back. Around it (not in blktests, the
# same limits): direct I/O is refused (EINVAL) while the block size is
# 512, going back to 512 turns it off, and attached with --direct-io=on
# at once, the device takes the disk's 4096-byte block size.
c004_dio_4k() {
	local disk dev n ok=0
	modprobe scsi_debug sector_size=4096 dev_size_mb=8 || { t_diag "modprobe scsi_debug failed"; return 1; }
	sdbg=1
	disk=$(scsi_debug_disk) || { t_diag "no scsi_debug disk appeared"; return 1; }
	dev=$(losetup -f --show "$disk") || return 1
	want "block size and direct I/O of $dev over $disk" \
		"default:512:dio=0 dio1:EINVAL:512:dio=0 4096:OK:4096:dio=0:ok dio1:OK:4096:dio=1 4096:OK:4096:dio=1:ok 512:OK:512:dio=0:ok" \
		"$(py block_sizes "$dev" dio1 4096 dio1 4096 512)" || ok=1
	losetup -d "$dev" || return 1
	dev=$(losetup -f --show --direct-io=on "$disk") || return 1
	n=${dev#/dev/}
	sysread "/sys/block/$n/loop/dio"
	want "$n loop/dio, attached with --direct-io=on" 1 "$v" || ok=1
	sysread "/sys/block/$n/queue/logical_block_size"
	want "$n logical_block_size, attached with --direct-io=on" 4096 "$v" || ok=1
	losetup -d "$dev" || return 1
	modprobe -r scsi_debug || { t_diag "modprobe -r scsi_debug failed"; return 1; }
	sdbg=
	kmsg_clean && return $ok
}

# The behaviour blktests loop/005 checks: LOOP_GET_STATUS and
# LOOP_GET_STATUS64 with a NULL argument are EINVAL (here on a bound and
# on an unbound device).
c005_get_status_null() {
	local dev free ok=0
	dev=$(losetup -f --show "$work/file") || return 1
	free=$(losetup -f) || return 1
	want "GET_STATUS, GET_STATUS64 (NULL) on $dev (bound), $free (unbound)" \
		"EINVAL EINVAL EINVAL EINVAL" "$(py get_status_null "$dev" "$free")" || ok=1
	losetup -d "$dev" || return 1
	kmsg_clean && return $ok
}

# The behaviour blktests loop/006 checks: LOOP_CHANGE_FD on a read-only
# device switching between two files while another process binds a loop
# device on top of it and unbinds it again. Every call succeeds, the
# device ends on the file of the last switch (its backing_file, and the
# data it reads), nothing is left bound on top, and the kernel log stays
# clean.
c006_change_fd_race() {
	local dev n out secs last ok=0
	secs=$(tier 3 3 30)
	dev=$(losetup -r -f --show "$work/file0") || return 1
	n=${dev#/dev/}
	out=$(timeout -k 5 $((secs + 120)) python3 "$helper" change_fd_race "$dev" \
		"$work/file0" "$work/file1" "$secs") || { t_diag "change_fd_race: exit $? ($out)"; ok=1; }
	t_diag "$secs s: $out"
	case " $out " in
	*" change:OK="[1-9]*) ;;
	*) t_diag "no successful LOOP_CHANGE_FD"; ok=1 ;;
	esac
	case " $out " in
	*" setup:OK="[1-9]*) ;;
	*) t_diag "no successful bind on top of $dev"; ok=1 ;;
	esac
	if [[ "$out" =~ (change|setup|detach|free/open):E[A-Z]+ ]]; then
		t_diag "a call failed: ${BASH_REMATCH[0]}"
		ok=1
	fi
	last=${out##*last=}
	case " $out " in
	*" reads=file$last "*) ;;
	*) t_diag "$dev does not read the file of the last switch (file$last)"; ok=1 ;;
	esac
	sysread "/sys/block/$n/loop/backing_file"
	want "$n backing file" "$work/file$last" "$v" || ok=1
	want "bound devices" "$n " "$(bound)" || ok=1
	losetup -d "$dev" || return 1
	kmsg_clean && return $ok
}

# The behaviour blktests loop/007 checks: ext4 with 1 KiB blocks mounted
# from a device, then LOOP_SET_CAPACITY (losetup -c) with the size
# unchanged: the block size the file system set stays (a reset hangs
# the next access), the mount stays usable.
c007_capacity_mounted() {
	local dev n ok=0
	truncate -s 32M "$work/fs.img" || return 1
	dev=$(losetup -P -f --show "$work/fs.img") || return 1
	n=${dev#/dev/}
	mkfs.ext4 -q -b 1024 "$dev" && mount -t ext4 "$dev" "$mnt" || { t_diag "mkfs/mount failed"; return 1; }
	want "$dev block size, mounted" 1024 "$(blockdev --getbsz "$dev")" || ok=1
	losetup -c "$dev" || { t_diag "losetup -c $dev failed"; ok=1; }
	timeout 60 ls -l "$mnt" >/dev/null || { t_diag "ls on the mount failed or hung ($?)"; ok=1; }
	want "$dev block size after losetup -c" 1024 "$(blockdev --getbsz "$dev")" || ok=1
	sysread "/sys/block/$n/size"
	want "$n size after losetup -c" 65536 "$v" || ok=1
	umount "$mnt" || return 1
	losetup -d "$dev" || return 1
	kmsg_clean && return $ok
}

# The behaviour blktests loop/008 checks: on a device attached without
# partition scanning, a partition table written on the device and added
# with BLKPG (as parted does; partx -a here) makes /dev/loopNp1 usable for
# mkfs. BLKRRPART stays refused (EINVAL: the disk suppresses partition
# scans), loop/partscan stays 0, and detaching removes the partition.
c008_partitions_without_scan() {
	local dev n out ok=0
	truncate -s 16M "$work/gpt.img" || return 1
	dev=$(losetup -f --show "$work/gpt.img") || return 1
	n=${dev#/dev/}
	printf 'label: gpt\nstart=2048, size=28672\n' | sfdisk -q --no-reread "$dev" >/dev/null ||
		{ t_diag "sfdisk $dev failed"; return 1; }
	out=$(blockdev --rereadpt "$dev" 2>&1)
	want "blockdev --rereadpt $dev" "blockdev: ioctl error on BLKRRPART: Invalid argument" "$out" || ok=1
	partx -a "$dev" || { t_diag "partx -a $dev failed"; ok=1; }
	want "partitions of $dev" "sys: ${n}p1 dev: ${n}p1" "$(parts "$n")" || ok=1
	mkfs.ext2 -q "${dev}p1" || { t_diag "mkfs.ext2 ${dev}p1 failed"; ok=1; }
	sysread "/sys/block/$n/loop/partscan"
	want "$n loop/partscan" 0 "$v" || ok=1
	losetup -d "$dev" || return 1
	want "partitions of $dev after detach" "sys: dev:" "$(parts "$n")" || ok=1
	kmsg_clean && return $ok
}

# The behaviour blktests loop/009 checks: LOOP_CONFIGURE with
# LO_FLAGS_PARTSCAN sends an add uevent for each partition it creates
# (there is no udev in the guest: nothing else rescans). Here every
# uevent of the attach and of the detach that follows, in order, with
# their variables, as loop.c sends them.
c009_configure_uevents() {
	local dev out ok=0 p=/devices/virtual/block/loopN
	dev=$(losetup -f) || return 1
	out=$(py configure_uevents "$dev" "$img")
	want "LOOP_CONFIGURE and LOOP_CLR_FD of $dev and their uevents" \
		"attach:OK change@$p(disk) change@$p(disk) add@$p/loopNp1(partition)[PARTN=1,PARTUUID=0b1e7e57-01] add@$p/loopNp2(partition)[PARTN=2,PARTUUID=0b1e7e57-02] detach:OK change@$p(disk) change@$p(disk)[DISK_MEDIA_CHANGE=1] remove@$p/loopNp1(partition)[PARTN=1,PARTUUID=0b1e7e57-01] remove@$p/loopNp2(partition)[PARTN=2,PARTUUID=0b1e7e57-02]" \
		"$out" || ok=1
	kmsg_clean && return $ok
}

# Not in blktests: LOOP_CHANGE_FD of a device bound read-only with
# partition scanning, to a copy of its partitioned file. The rescan that
# follows removes the partitions and adds them again; udev must see both,
# or it drops their /dev/disk/by-* links and never makes them again. As in
# loop.c, the rescan runs after the disk's uevents are unsuppressed.
cx_change_fd_uevents() {
	local dev out ok=0 p=/devices/virtual/block/loopN
	cp "$img" "$work/parts-copy.img" || return 1
	dev=$(losetup -f) || return 1
	out=$(py change_fd_uevents "$dev" "$img" "$work/parts-copy.img")
	want "LOOP_CHANGE_FD of $dev, bound with partition scanning, and its uevents" \
		"change_fd:OK remove@$p/loopNp1(partition)[PARTN=1,PARTUUID=0b1e7e57-01] remove@$p/loopNp2(partition)[PARTN=2,PARTUUID=0b1e7e57-02] change@$p(disk) add@$p/loopNp1(partition)[PARTN=1,PARTUUID=0b1e7e57-01] add@$p/loopNp2(partition)[PARTN=2,PARTUUID=0b1e7e57-02] change@$p(disk)" \
		"$out" || ok=1
	kmsg_clean && return $ok
}

# The behaviour blktests loop/010 checks: one process binds a device with
# partition scanning and reads its first partition while another detaches
# it. The partition scan of the detach never fails with EBUSY (loop.c's
# "partition scan of loopN failed (rc=-16)", which leaves stale
# partitions), and once detached the device has no partition left.
c010_partscan_vs_detach() {
	local dev n out secs ok=0
	secs=$(tier 3 3 30)
	dev=$(losetup -f) || return 1
	n=${dev#/dev/}
	out=$(timeout -k 5 $((secs + 120)) python3 "$helper" partscan_race "$dev" "$img" "$secs") ||
		{ t_diag "partscan_race: exit $? ($out)"; ok=1; }
	t_diag "$secs s: $out"
	case " $out " in
	*" attach:OK="[1-9]*) ;;
	*) t_diag "no successful attach"; ok=1 ;;
	esac
	losetup -d "$dev" 2>/dev/null
	want "partitions of $dev after detach" "sys: dev:" "$(parts "$n")" || ok=1
	# Only the scan of the detach (__loop_clr_fd) counts, as in blktests:
	# the scan of an attach may find the partitions of the previous binding
	# still open and fail with EBUSY on loop.ko too ("partition scan of
	# loopN (FILE) failed (rc=-16)"): shown, not counted.
	out=$(dmesg | tail -n +"$((kmsg_mark + 1))" | grep "partition scan of $n")
	[ -z "$out" ] || t_diag "kernel log:" "$out"
	if grep -q "partition scan of $n failed (rc=-16)" <<<"$out"; then
		ok=1
	fi
	kmsg_clean && return $ok
}

# The behaviour blktests loop/011 checks: on a file on tmpfs, which has
# no FALLOC_FL_ZERO_RANGE, mkfs.ext2 makes one write-zeroes request fail
# (one "operation not supported error ... WRITE_ZEROES" line), after which
# the device stops advertising write zeroes (write_zeroes_max_bytes 0)
# and the kernel log gets no more such lines; discard (hole punching,
# which tmpfs has) stays advertised.
c011_zeroes_unsupported() {
	local dev n out before discard ok=0
	mkdir -p "$work/tmpfs" && mount -t tmpfs -o size=64M blktests "$work/tmpfs" || return 1
	truncate -s 32M "$work/tmpfs/disk.img" || return 1
	dev=$(losetup -f --show "$work/tmpfs/disk.img") || return 1
	n=${dev#/dev/}
	sysread "/sys/block/$n/queue/discard_max_bytes"
	discard=$v
	sysread "/sys/block/$n/queue/write_zeroes_max_bytes"
	before=$v
	[ "$before" != 0 ] || { t_diag "$n write_zeroes_max_bytes is 0 before mkfs"; ok=1; }
	mkfs.ext2 -q "$dev" || { t_diag "mkfs.ext2 $dev failed"; ok=1; }
	out=$(dmesg | tail -n +"$((kmsg_mark + 1))")
	want "WRITE_ZEROES errors of $n in the kernel log" 1 \
		"$(grep -c "operation not supported error, dev $n,.*WRITE_ZEROES" <<<"$out")" || ok=1
	sysread "/sys/block/$n/queue/write_zeroes_max_bytes"
	want "$n write_zeroes_max_bytes after mkfs (was $before)" 0 "$v" || ok=1
	# tmpfs punches holes: discard stays.
	sysread "/sys/block/$n/queue/discard_max_bytes"
	want "$n discard_max_bytes after mkfs" "$discard" "$v" || ok=1
	losetup -d "$dev" || return 1
	umount "$work/tmpfs" || return 1
	kmsg_clean && return $ok
}

t_check "loop/001: losetup -P creates the partitions, detach removes them" c001_partscan
t_check "loop/002: LOOP_SET_BLOCK_SIZE 4096 2048 1234 1024 512: EINVAL for 1234, O_DIRECT I/O at each" c002_block_sizes
t_check "loop/003: opening and closing an unbound device 500 times leaves it unbound" c003_open_close
t_check "loop/004: block size 4096 and direct I/O over a 4096-byte-sector disk" c004_dio_4k
t_check "loop/005: LOOP_GET_STATUS(64) with a NULL argument is EINVAL" c005_get_status_null
# The timed races of blktests (TIMED there, not QUICK): 3 s each, 30 s in
# the slow tier, none in the quick tier.
if [ "$(tier 0 1 1)" = 0 ]; then
	t_skip "loop/006: LOOP_CHANGE_FD while a device is bound on top and unbound" "quick tier (a timed race)"
else
	t_check "loop/006: LOOP_CHANGE_FD while a device is bound on top and unbound" c006_change_fd_race
fi
t_check "loop/007: LOOP_SET_CAPACITY under mounted ext4 keeps its block size" c007_capacity_mounted
t_check "loop/008: BLKPG partitions on a device without partition scanning" c008_partitions_without_scan
t_check "loop/009: LOOP_CONFIGURE with partition scanning sends add uevents for the partitions" c009_configure_uevents
t_check "LOOP_CHANGE_FD with partition scanning: the partitions are removed and added again, with uevents" cx_change_fd_uevents
if [ "$(tier 0 1 1)" = 0 ]; then
	t_skip "loop/010: attach with partition scan racing detach: no EBUSY scan, no stale partition" "quick tier (a timed race)"
else
	t_check "loop/010: attach with partition scan racing detach: no EBUSY scan, no stale partition" c010_partscan_vs_detach
fi
t_check "loop/011: write zeroes unsupported by the backing file: one error, then disabled" c011_zeroes_unsupported
t_done
