#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# mount -o loop (util-linux libmount) on the driver under test:
#
#  - mkfs.ext4 an image, `mount -o loop IMG DIR`: the loop device is bound
#    with autoclear set (losetup, --json, sysfs), data written survives
#    umount and a second mount, and umount detaches the device (losetup -a
#    empty, /sys/block/loopN/loop gone);
#  - `mount -o loop,ro`: a read-only loop device and file system;
#  - `mount -o loop=/dev/loopN,offset=,sizelimit=`;
#  - 20 parallel `mount -o loop` of 20 different 8 MiB ext4 images (more
#    than the 8 devices made at load), then 20 parallel umounts, twice (5,
#    once, in the quick tier; 50, 20 times, in the slow one; a cycle of 50 takes
#    about 140 s on the test kernel): every mount and umount succeeds, each
#    mount has its own device bound to its own image with autoclear, the
#    data written in one cycle is read back in the next, nothing is bound
#    afterwards, and the later cycles reuse the devices of the first (no
#    device is created while enough unbound ones exist).
#
# Explicit expectations for every step; with LOOP_DRIVER=rust the
# single-mount steps are also run on loop.ko in the same guest first
# (rust_loop unloaded, `modprobe loop`, steps, `rmmod loop`, rust_loop
# loaded again) and each step's log of commands, outputs and sysfs values
# must be identical. The parallel step's device assignment is racy by
# nature, so it has explicit expectations only.
#
# The images are ext4 without a journal: under the KASAN kernel and TCG
# a journaled mount costs about 40% more, and the journaled case is covered
# by the single-mount steps.

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/compare.sh"

work=$T_SCRATCH/mount-test
mnt=$T_SCRATCH/mnt-mount-test
E=$work/e.img	# 32 MiB ext4, default features (journal)
F=$work/f.img	# ext4 of 8 MiB at offset 1 MiB
M=$mnt/m
NPAR=$(tier 5 20 50)
CYCLES=$(tier 1 2 20)
STEP_TIMEOUT=$(tier 600 600 3600)

cleanup() {
	local m
	wd_disarm
	for m in $(grep -o " $mnt/[^ ]*" /proc/mounts 2>/dev/null); do
		umount -l "$m" 2>/dev/null
	done
	timeout -k 5 60 losetup -D 2>/dev/null
	rm -rf "$work" "$mnt"
}
trap cleanup EXIT

# ---------------------------------------------------------------- helpers

# mounts_under DIR: "SOURCE MOUNTPOINT" of every mount below DIR.
mounts_under() {
	local src dst rest
	while read -r src dst rest; do
		case $dst in "$1"/*) echo "$src $dst" ;; esac
	done </proc/mounts
}

# ------------------------------------------------------------------ steps

s_mount_loop() {
	head -c 1M /dev/urandom >"$work/data"
	run mkfs.ext4 -q -F "$E" 32M
	want "mkfs.ext4 exit status" 0 "$rc"
	want_run 0 "" mount -o loop "$E" "$M"
	want_run 0 "/dev/loop0 ext4" findmnt -n -r -o SOURCE,FSTYPE "$M"
	want_run 0 "/dev/loop0 7:0 1 0 $E 0 512 0 0" \
		losetup -l -n --raw -O NAME,MAJ:MIN,AUTOCLEAR,RO,BACK-FILE,DIO,LOG-SEC,OFFSET,SIZELIMIT
	run losetup --json
	want "losetup --json: name, back-file, autoclear, ro" "/dev/loop0 $E true false" \
		"$(jq -r '.loopdevices | map("\(.name) \(."back-file") \(.autoclear) \(.ro)") | join(",")' <<<"$out" 2>&1)"
	want_sys /sys/block/loop0/loop/autoclear 1
	want_sys /sys/block/loop0/loop/backing_file "$E"
	want_sys /sys/block/loop0/ro 0
	want_run 0 "" cp "$work/data" "$M/data"
	want_run 0 "" umount "$M"
	# Autoclear: the device is detached by the last close.
	want_run 0 "" losetup -a
	want_absent /sys/block/loop0/loop
	want_sys /sys/block/loop0/size 0
	want "bound devices after umount" "" "$(bound)"
	want_rc 0 fsck.ext4 -fn "$E"
	want_run 0 "" mount -o loop "$E" "$M"
	want_run 0 "/dev/loop0 ext4" findmnt -n -r -o SOURCE,FSTYPE "$M"
	want_data "$M/data" 0 "$work/data"
	want_run 0 "" umount "$M"
	want_run 0 "" losetup -a
	want_absent /sys/block/loop0/loop
	want_rc 0 fsck.ext4 -fn "$E"
}

s_mount_ro() {
	local opts
	want_run 0 "" mount -o loop,ro "$E" "$M"
	want_run 0 "/dev/loop0 ext4" findmnt -n -r -o SOURCE,FSTYPE "$M"
	run findmnt -n -r -o OPTIONS "$M"
	want "mounted read-only" ro "${out%%,*}"
	want_run 0 "/dev/loop0 1 1 $E" losetup -l -n --raw -O NAME,AUTOCLEAR,RO,BACK-FILE
	want_sys /sys/block/loop0/ro 1
	want_sys /sys/block/loop0/loop/autoclear 1
	want_data "$M/data" 0 "$work/data"
	want_run 1 "touch: cannot touch '$M/new': Read-only file system" touch "$M/new"
	want_run 0 "" umount "$M"
	want_run 0 "" losetup -a
	want_absent /sys/block/loop0/loop
	# loop.c leaves the disk's read-only flag as it was until the next
	# setup (__loop_clr_fd does not reset it).
	want_sys /sys/block/loop0/ro 1
}

s_mount_offset() {
	run mkfs.ext4 -q -F -E offset=1048576 "$F" 8M
	want "mkfs.ext4 -E offset exit status" 0 "$rc"
	want_run 0 "" mount -o loop=/dev/loop5,offset=1048576,sizelimit=8388608 "$F" "$M"
	want_run 0 "/dev/loop5 ext4" findmnt -n -r -o SOURCE,FSTYPE "$M"
	want_run 0 "/dev/loop5 1 1048576 8388608 $F" \
		losetup -l -n --raw -O NAME,AUTOCLEAR,OFFSET,SIZELIMIT,BACK-FILE
	want_sys /sys/block/loop5/loop/offset 1048576
	want_sys /sys/block/loop5/loop/sizelimit 8388608
	want_sys /sys/block/loop5/size 16384
	want_run 0 "" cp "$work/data" "$M/data"
	want_run 0 "" umount "$M"
	want_run 0 "" losetup -a
	want_absent /sys/block/loop5/loop
	want_run 0 "" mount -o loop,offset=1048576 "$F" "$M"
	want_run 0 "/dev/loop0 1048576 0" losetup -l -n --raw -O NAME,OFFSET,SIZELIMIT
	want_data "$M/data" 0 "$work/data"
	want_run 0 "" umount "$M"
	want "bound devices after umount" "" "$(bound)"
}

# par_mount CYCLE: mount every image in parallel, check, umount in parallel.
par_mount() {
	local k=$1 i pid pids=() bad=0 src dst n=0 devs=() v2 want_prev
	for i in $(seq $NPAR); do
		mount -o loop "$work/p$i.img" "$mnt/p$i" >"$work/pm$i.out" 2>&1 &
		pids[i]=$!
	done
	for i in $(seq $NPAR); do
		if ! wait "${pids[i]}"; then
			bad=$((bad + 1))
			errs+=("cycle $k: mount -o loop p$i.img failed: $(<"$work/pm$i.out")")
		fi
	done
	want "cycle $k: mount -o loop failures" 0 "$bad"
	# Every mount on its own device, bound to its own image, with autoclear.
	while read -r src dst; do
		n=$((n + 1))
		i=${dst##*/p}
		case $src in
		/dev/loop[0-9]*) ;;
		*) errs+=("cycle $k: $dst is mounted from $src"); continue ;;
		esac
		devs+=("$src")
		sysread "/sys/block/${src#/dev/}/loop/backing_file"
		want "cycle $k: backing file of $src ($dst)" "$work/p$i.img" "$v"
		sysread "/sys/block/${src#/dev/}/loop/autoclear"
		want "cycle $k: autoclear of $src" 1 "$v"
		# The previous cycle's file is there; leave one for the next.
		if [ "$k" -gt 1 ]; then
			v2=
			read -r v2 <"$dst/c$((k - 1))" 2>/dev/null
			want "cycle $k: $dst/c$((k - 1))" "p$i cycle $((k - 1))" "$v2"
		fi
		echo "p$i cycle $k" >"$dst/c$k" || errs+=("cycle $k: writing $dst/c$k failed")
	done < <(mounts_under "$mnt")
	want "cycle $k: mounts" $NPAR "$n"
	want "cycle $k: distinct loop devices" $NPAR \
		"$(printf '%s\n' "${devs[@]}" | sort -u | wc -l)"
	run losetup -a
	want "cycle $k: losetup -a lines while mounted" $NPAR "$(grep -c '^/dev/loop' <<<"$out")"
	want "cycle $k: bound devices (sysfs) while mounted" $NPAR "$(wc -w <<<"$(bound)")"

	bad=0
	for i in $(seq $NPAR); do
		umount "$mnt/p$i" >"$work/pu$i.out" 2>&1 &
		pids[i]=$!
	done
	for i in $(seq $NPAR); do
		if ! wait "${pids[i]}"; then
			bad=$((bad + 1))
			errs+=("cycle $k: umount $mnt/p$i failed: $(<"$work/pu$i.out")")
		fi
	done
	want "cycle $k: umount failures" 0 "$bad"
	want "cycle $k: mounts left" "" "$(mounts_under "$mnt")"
	want_run 0 "" losetup -a
	want "cycle $k: bound devices after umount" "" "$(bound)"
}

s_parallel_mount() {
	local k n1= n t
	# One 8 MiB ext4 image copied 50 times (sparse), all copies at once.
	run mkfs.ext4 -q -F -O ^has_journal -N 64 -E lazy_itable_init=0 "$work/tmpl.img" 8M
	want "mkfs.ext4 of the template" 0 "$rc"
	local pids=()
	for i in $(seq $NPAR); do
		cp --sparse=always "$work/tmpl.img" "$work/p$i.img" &
		pids+=($!)
	done
	for i in "${pids[@]}"; do
		wait "$i" || errs+=("cp of an image failed")
	done
	mkdir -p $(for i in $(seq $NPAR); do echo "$mnt/p$i"; done)
	for k in $(seq $CYCLES); do
		t=$SECONDS
		par_mount "$k"
		n=$(loop_list | wc -w)
		t_diag "parallel mount cycle $k: $((SECONDS - t)) s, $n loop devices exist"
		if [ -z "$n1" ]; then
			n1=$n
			# Each of the 50 mounts needed a device of its own; GET_FREE
			# only adds one when none is unbound (a few more when racing).
			[ "$n" -ge $NPAR ] && [ "$n" -le $((NPAR + 8)) ] ||
				errs+=("cycle 1: $n loop devices exist, want $NPAR to $((NPAR + 8))")
		else
			want "cycle $k: loop devices (reused, none added)" "$n1" "$n"
		fi
	done
	want_run 0 "" losetup -D
	want_run 0 "" losetup -a
}

steps=(
	"mount_loop|mkfs.ext4, mount -o loop, data survives remount, umount detaches (autoclear)"
	"mount_ro|mount -o loop,ro: read-only device and file system, umount detaches"
	"mount_offset|mount -o loop=/dev/loop5,offset=,sizelimit="
	"parallel_mount|$NPAR parallel mount -o loop and umount, $CYCLES cycles, nothing left bound|noref"
)

# After every step: nothing mounted under $mnt.
step_cleanup() {
	if [ -n "$(mounts_under "$mnt")" ]; then
		umount $(mounts_under "$mnt" | cut -d' ' -f2) >/dev/null 2>&1
	fi
}

rm -rf "$work" "$mnt"
if ! mkdir -p "$work" "$M"; then
	t_fail "work directory set up"
	t_done
fi
compare_main
