#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The file systems people put on loop devices, each made by its own
# userland tool and attached the way its users attach it:
#
#  - squashfs (snap packages): mksquashfs, attached read-only;
#  - erofs (Android APEX images): mkfs.erofs, read-only;
#  - iso9660: xorriso, read-only;
#  - ext4 (APEX images too), vfat, btrfs, xfs: made on the loop device,
#    read-write.
#
# Each is mounted, every file's SHA-256 is checked against the tree it was
# made from; the writable ones then get a write workload (a second tree
# copied in, files removed and appended to, fsync), are unmounted and
# checked by their own checker (e2fsck -fn, fsck.vfat -n, btrfs check,
# xfs_repair -n), mounted again and checked once more. A file system the
# running kernel lacks (the project's own kernels have ext4 only; Debian's
# has them all) is skipped.

. "$(dirname "$0")/lib.sh"

work=$T_SCRATCH/fsimage-test
mnt=$T_SCRATCH/mnt-fsimage
dev=

cleanup() {
	mountpoint -q "$mnt" && umount "$mnt"
	[ -n "$dev" ] && losetup -d "$dev" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work" "$mnt"
kmsg_mark=$(dmesg | wc -l)

# The tree every image is made from: files of several sizes (a sparse one,
# one over a MiB), a directory, a symlink; and its checksums.
tree=$work/tree
mkdir -p "$tree/dir/sub"
head -c 1234567 /dev/urandom >"$tree/big"
head -c 4096 /dev/urandom >"$tree/dir/page"
head -c 100 /dev/urandom >"$tree/dir/sub/small"
: >"$tree/empty"
printf 'hello\n' >"$tree/dir/hello"
ln -s dir/hello "$tree/link"
(cd "$tree" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$work/sums"

# has_fs NAME: the running kernel has the file system, or can load it.
has_fs() {
	grep -qw "$1" /proc/filesystems && return 0
	modprobe -q "$1" 2>/dev/null && grep -qw "$1" /proc/filesystems
}

# verify: every file of the tree reads back with its checksum.
verify() {
	(cd "$mnt" && sha256sum --quiet -c "$work/sums") ||
		{ t_diag "$1: checksums differ"; return 1; }
}

# readonly_case FS: an image made by FS's tool, attached read-only.
readonly_case() {
	local fs=$1 img=$work/$1.img rc=0
	case $fs in
	squashfs) mksquashfs "$tree" "$img" -quiet -noappend >/dev/null ;;
	erofs) mkfs.erofs "$img" "$tree" >/dev/null 2>&1 ;;
	iso9660) xorriso -as mkisofs -quiet -R -J -o "$img" "$tree" 2>/dev/null ;;
	esac || { t_diag "making the $fs image failed"; return 1; }
	dev=$(losetup -r -f --show "$img") || { t_diag "losetup -r $img failed"; return 1; }
	mount -t "$fs" -o ro "$dev" "$mnt" || { t_diag "mount -t $fs $dev failed"; return 1; }
	verify "$fs" || rc=1
	umount "$mnt" || rc=1
	losetup -d "$dev" || rc=1
	dev=
	kmsg_clean || rc=1
	return $rc
}

# writable_case FS: FS made on a loop device over a sparse file, the tree
# copied in, a workload, unmount, its checker, mount again.
writable_case() {
	local fs=$1 img=$work/$1.img rc=0
	truncate -s 320M "$img" || return 1
	dev=$(losetup -f --show "$img") || { t_diag "losetup $img failed"; return 1; }
	case $fs in
	ext4) mkfs.ext4 -q -F "$dev" ;;
	vfat) mkfs.vfat "$dev" >/dev/null ;;
	btrfs) mkfs.btrfs -q -f "$dev" >/dev/null ;;
	xfs) mkfs.xfs -q -f "$dev" ;;
	esac || { t_diag "mkfs $fs on $dev failed"; return 1; }
	mount -t "$fs" "$dev" "$mnt" || { t_diag "mount -t $fs $dev failed"; return 1; }
	# vfat has no symlinks: the link is copied as the file it names.
	cp -rL "$tree/." "$mnt/" || { t_diag "$fs: copying the tree failed"; rc=1; }
	mkdir -p "$mnt/second" && cp -r "$tree/dir" "$mnt/second/" || rc=1
	head -c 2M /dev/urandom >>"$mnt/second/dir/page" && rm -f "$mnt/second/dir/hello" || rc=1
	sync -f "$mnt/big" || rc=1
	verify "$fs" || rc=1
	umount "$mnt" || { t_diag "umount $fs failed"; return 1; }
	case $fs in
	ext4) e2fsck -fn "$dev" >"$work/fsck.log" 2>&1 ;;
	vfat) fsck.vfat -n "$dev" >"$work/fsck.log" 2>&1 ;;
	btrfs) btrfs check "$dev" >"$work/fsck.log" 2>&1 ;;
	xfs) xfs_repair -n "$dev" >"$work/fsck.log" 2>&1 ;;
	esac || { t_diag "$fs checker:" "$(tail -15 "$work/fsck.log")"; rc=1; }
	mount -t "$fs" "$dev" "$mnt" || { t_diag "$fs does not mount again"; return 1; }
	verify "$fs after a remount" || rc=1
	umount "$mnt" || rc=1
	losetup -d "$dev" || rc=1
	dev=
	rm -f "$img"
	kmsg_clean || rc=1
	return $rc
}

for fs in squashfs erofs iso9660; do
	if has_fs "$fs"; then
		t_check "$fs image attached read-only: every file's checksum" readonly_case "$fs"
	else
		t_skip "$fs image attached read-only: every file's checksum" "no $fs in this kernel"
	fi
done
for fs in ext4 vfat btrfs xfs; do
	if has_fs "$fs"; then
		t_check "$fs on a loop device: checksums, a write workload, its checker, a remount" writable_case "$fs"
	else
		t_skip "$fs on a loop device: checksums, a write workload, its checker, a remount" "no $fs in this kernel"
	fi
done
t_done
