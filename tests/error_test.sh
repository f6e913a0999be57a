#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Errors of the backing store reach the submitter, as with loop.ko, with
# no hang, no splat and no leak, and the device stays usable:
#
#  - ENOSPC: a loop device over a 16 MiB sparse file on a 4 MiB tmpfs;
#    writing 8 MiB through it with O_DIRECT fails with "No space left on
#    device", what fit reads back, the device detaches, and after the
#    tmpfs grows the same writes succeed through a new device.
#  - a medium error: a loop device over a scsi_debug disk that fails reads
#    of sectors 4660-4669 (opts=2), direct and buffered: a read across them
#    fails, reads around them succeed with the right data, the device
#    detaches. As with loop.ko, an O_DIRECT read of a direct loop device
#    gets the lower device's status (BLK_STS_MEDIUM: "No data available");
#    a buffered loop device, and any read through the loop device's page
#    cache, get "Input/output error".
#  - EINVAL of the backing store: a loop device with 512-byte blocks over
#    a scsi_debug disk with 4096-byte sectors that can discard and write
#    zeroes; a 512-byte discard and a 512-byte write-zeroes reach the
#    disk's fallocate, which refuses the unaligned range with EINVAL. As
#    with loop.ko (loop_handle_cmd() passes on EOPNOTSUPP only), both
#    fail with "Input/output error".

. "$(dirname "$0")/lib.sh"

work=$T_SCRATCH/error-test
tmp=$T_SCRATCH/mnt-error
dev=
sdbg=

cleanup() {
	[ -n "$dev" ] && losetup -d "$dev" 2>/dev/null
	mountpoint -q "$tmp" && umount "$tmp"
	[ -n "$sdbg" ] && modprobe -r scsi_debug 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work" "$tmp"
kmsg_mark=$(dmesg | wc -l)

enospc() {
	local img=$tmp/full.img
	mount -t tmpfs -o size=4M tmpfs "$tmp" || return 1
	truncate -s 16M "$img" || return 1
	dev=$(losetup -f --show "$img") || { t_diag "losetup failed"; return 1; }
	dd if=/dev/urandom of="$work/pattern" bs=1M count=8 status=none || return 1
	fails_with "No space left on device" \
		dd if="$work/pattern" of="$dev" bs=1M oflag=direct status=none || return 1
	# The first 2 MiB fit in any case.
	cmp -n 2M "$dev" "$work/pattern" || { t_diag "$dev: the data that fit does not read back"; return 1; }
	losetup -d "$dev" || { t_diag "losetup -d $dev failed after ENOSPC"; return 1; }
	dev=
	mount -o remount,size=32M "$tmp" || return 1
	dev=$(losetup -f --show "$img") || { t_diag "losetup failed"; return 1; }
	dd if="$work/pattern" of="$dev" bs=1M oflag=direct status=none ||
		{ t_diag "dd to $dev failed after the tmpfs grew"; return 1; }
	echo 3 >/proc/sys/vm/drop_caches
	cmp -n 8M "$dev" "$work/pattern" || { t_diag "$dev does not read back the pattern"; return 1; }
	losetup -d "$dev" && dev= || return 1
	umount "$tmp" || return 1
	kmsg_clean
}

# medium_error MODE MESSAGE: MODE is direct or buffered; an O_DIRECT read
# across the bad sectors says MESSAGE.
medium_error() {
	local mode=$1 msg=$2 disk i opt= ok=1
	[ "$mode" = direct ] && opt=--direct-io=on
	if [ -z "$sdbg" ]; then
		modprobe scsi_debug dev_size_mb=8 opts=2 || { t_diag "modprobe scsi_debug failed"; return 1; }
		sdbg=1
	fi
	disk=$(scsi_debug_disk) || { t_diag "no scsi_debug disk appeared"; return 1; }
	dev=$(losetup -f --show $opt "$disk") || { t_diag "losetup $opt $disk failed"; return 1; }
	# Sectors 4660-4669 are bytes 2385920-2391039: 4 KiB blocks 582-583.
	fails_with "$msg" \
		dd if="$dev" of=/dev/null bs=4k skip=576 count=16 iflag=direct status=none || ok=
	# Through the device's page cache: EIO in both modes.
	fails_with "Input/output error" \
		dd if="$dev" of=/dev/null bs=4k skip=582 count=2 status=none || ok=
	cmp -n 2M "$dev" "$disk" || { t_diag "$dev: reads before the bad sectors differ from $disk"; ok=; }
	cmp -i 3M:3M -n 1M "$dev" "$disk" || { t_diag "$dev: reads after the bad sectors differ"; ok=; }
	losetup -d "$dev" || { t_diag "losetup -d $dev failed after the error"; return 1; }
	dev=
	kmsg_clean && [ -n "$ok" ]
}

t_check "ENOSPC of the backing file system: the writer gets ENOSPC, what fit reads back, the device detaches and works again" enospc
t_check "medium error under a direct loop device: ENODATA to the reader, other reads intact, detaches" \
	medium_error direct "No data available"
t_check "medium error under a buffered loop device: EIO to the reader, other reads intact, detaches" \
	medium_error buffered "Input/output error"
if [ -n "$sdbg" ]; then
	modprobe -r scsi_debug && sdbg= || t_fail "scsi_debug unloads"
fi

unaligned_fallocate() {
	local disk ok=1
	modprobe scsi_debug dev_size_mb=8 sector_size=4096 lbpu=1 lbpws=1 ||
		{ t_diag "modprobe scsi_debug failed"; return 1; }
	sdbg=1
	disk=$(scsi_debug_disk) || { t_diag "no scsi_debug disk appeared"; return 1; }
	dev=$(losetup -f --show -b 512 "$disk") || { t_diag "losetup -b 512 $disk failed"; return 1; }
	fails_with "Input/output error" blkdiscard -o 0 -l 512 "$dev" || ok=
	fails_with "Input/output error" blkdiscard -z -o 0 -l 512 "$dev" || ok=
	losetup -d "$dev" || { t_diag "losetup -d $dev failed"; return 1; }
	dev=
	modprobe -r scsi_debug && sdbg= || { t_diag "scsi_debug does not unload"; return 1; }
	kmsg_clean && [ -n "$ok" ]
}
t_check "EINVAL from the backing disk's fallocate: discard and write-zeroes fail with EIO" \
	unaligned_fallocate
t_done
