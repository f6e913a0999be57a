#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# util-linux losetup against the driver under test: every option a user
# reaches for, with the values it must show, and, for rust_loop, the same
# steps recorded on loop.ko in the same guest and diffed.
#
# Each step (s_* below) starts with no device bound, runs losetup and
# friends, checks the exact values loop.c gives (explicit expectations, one
# TAP line per step) and records every command with its output and exit
# status in a log. With LOOP_DRIVER=rust
# the whole sequence first runs on loop.ko (rust_loop unloaded, `modprobe
# loop`, steps, `rmmod loop`, rust_loop loaded again) and each step's log on
# rust_loop must be identical to loop.ko's: device names, MAJ:MIN, sizes,
# sysfs values and error messages included. Only the "[dev]:inode" that
# `losetup -a` and `-j` print is written symbolically in the logs (the
# reference may run in another guest, on another scratch file system); the
# steps check its real value explicitly against stat(1).
#
# Covered: -f --show, -a, -l (with -O and --raw), --json (jq), -j FILE
# (with -o), -o, --sizelimit, -r, -P on an sfdisk partition table, -b /
# --sector-size, --direct-io=on|off, -c after growing and shrinking the
# backing file, -d, -D, -d of an unbound device, `losetup /dev/loopN FILE`
# (also on a device that does not exist yet), and the
# /sys/block/loopN/loop/ attributes existing exactly while bound, and the
# whole /sys/block/loopN tree in seven states.

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/compare.sh"

work=$T_SCRATCH/losetup-test
A=$work/a.img	# 64 MiB, pattern pat_a at 1 MiB
B=$work/b.img	# 16 MiB
C=$work/c.img	# 8 MiB
P=$work/p.img	# 64 MiB, DOS table: p1 10 MiB at 1 MiB, p2 16 MiB at 11 MiB
G=$work/g.img	# 16 MiB, grown and shrunk by the capacity step
E=$work/e.img	# 64 MiB, an ext4 file system made by the sysfs_tree step
STEP_TIMEOUT=240

cleanup() {
	wd_disarm
	timeout -k 5 60 losetup -D 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

LOOP_ATTRS="autoclear backing_file dio offset partscan sizelimit"
COLS=NAME,MAJ:MIN,SIZELIMIT,OFFSET,AUTOCLEAR,RO,BACK-FILE,DIO,LOG-SEC,PARTSCAN

# ------------------------------------------------------------------ steps
#
# Every step starts with no device bound and only the devices earlier steps
# created (loop0..loop7 at first; GET_FREE hands out the lowest unbound
# index, so the device names are the same on every driver run), and leaves
# nothing bound. ai_X is how `losetup -a` prints backing file X
# ("[st_dev]:inode").

s_find_show() {
	want_absent /sys/block/loop0/loop
	want_run 0 "" losetup -a
	want_run 0 /dev/loop0 losetup -f --show "$A"
	want_node /dev/loop0 7:0
	want_sys /sys/block/loop0/dev 7:0
	want_sys /sys/block/loop0/size 131072
	want_sys /sys/block/loop0/ro 0
	want_run 0 "/dev/loop0: $ai_A ($A)" losetup -a
	want_list /dev/loop0 $COLS "/dev/loop0 7:0 0 0 0 0 $A 0 512 0"
	want_run 0 "$(printf '%s\n' \
		"NAME       SIZELIMIT OFFSET AUTOCLEAR RO BACK-FILE$(printf '%*s' $((${#A} - 9)) '') DIO LOG-SEC" \
		"/dev/loop0         0      0         0  0 $A   0     512")" losetup -l
	want "/sys/block/loop0/loop/ while bound" "$LOOP_ATTRS" "$(ls_names /sys/block/loop0/loop)"
	want_sys /sys/block/loop0/loop/backing_file "$A"
	want_sys /sys/block/loop0/loop/offset 0
	want_sys /sys/block/loop0/loop/sizelimit 0
	want_sys /sys/block/loop0/loop/autoclear 0
	want_sys /sys/block/loop0/loop/partscan 0
	want_sys /sys/block/loop0/loop/dio 0
	want_run 0 67108864 blockdev --getsize64 /dev/loop0
	want_data /dev/loop0 1048576 "$work/pat_a"
	want_run 0 "" losetup -d /dev/loop0
	want_absent /sys/block/loop0/loop
	want_sys /sys/block/loop0/size 0
	want_node /dev/loop0 7:0
	want_run 0 "" losetup -a
	want_run 0 /dev/loop0 losetup -f --show "$A"
	want_run 0 /dev/loop1 losetup -f --show "$B"
	# losetup lists in /sys/block order (kernfs: by name hash).
	want_run 0 "/dev/loop1: $ai_B ($B)
/dev/loop0: $ai_A ($A)" losetup -a
	want_run 0 "" losetup -d /dev/loop0
	want_run 0 /dev/loop0 losetup -f --show "$C"
	want_sys /sys/block/loop0/loop/backing_file "$C"
	want_sys /sys/block/loop0/size 16384
	want_run 0 "" losetup -d /dev/loop0 /dev/loop1
}

s_json() {
	local t=$'\t' f='[.name, ."back-file", .offset, .sizelimit, .ro, .dio, ."log-sec", .autoclear]'
	want_run 0 /dev/loop0 losetup -f --show "$A"
	want_run 0 /dev/loop1 losetup -f --show -r -o 4096 --sizelimit 1048576 "$B"
	want_run 0 /dev/loop2 losetup -f --show --direct-io=on -b 4096 "$C"
	run losetup --json
	want "losetup --json exit status" 0 "$rc"
	want "losetup --json, parsed by jq" "3
string string number number boolean boolean number boolean
/dev/loop0$t$A${t}0${t}0${t}false${t}false${t}512${t}false
/dev/loop1$t$B${t}4096${t}1048576${t}true${t}false${t}512${t}false
/dev/loop2$t$C${t}0${t}0${t}false${t}true${t}4096${t}false" \
		"$(jq -r "(.loopdevices | length),
			(.loopdevices[0] | $f | map(type) | join(\" \")),
			(.loopdevices | sort_by(.name)[] | $f | @tsv)" <<<"$out" 2>&1)"
	run losetup --json -l /dev/loop1
	want "losetup --json -l /dev/loop1" "/dev/loop1 1048576 4096 true" \
		"$(jq -r '.loopdevices | map("\(.name) \(.sizelimit) \(.offset) \(.ro)") | join(",")' <<<"$out" 2>&1)"
	want_run 0 "" losetup -d /dev/loop0 /dev/loop1 /dev/loop2
}

s_find_by_file() {
	want_run 0 /dev/loop0 losetup -f --show "$A"
	want_run 0 /dev/loop1 losetup -f --show "$B"
	want_run 0 /dev/loop2 losetup -f --show -o 1048576 "$B"
	want_run 0 "/dev/loop0: $ai_A ($A)" losetup -j "$A"
	want_run 0 "/dev/loop1: $ai_B ($B)
/dev/loop2: $ai_B ($B), offset 1048576" losetup -j "$B"
	want_run 0 "/dev/loop2: $ai_B ($B), offset 1048576" losetup -j "$B" -o 1048576
	want_run 0 "" losetup -j "$C"
	want_run 0 "" losetup -d /dev/loop1
	want_run 0 "/dev/loop2: $ai_B ($B), offset 1048576" losetup -j "$B"
	want_run 0 "" losetup -d /dev/loop0 /dev/loop2
	want_run 0 "" losetup -j "$A"
}

s_offset_sizelimit() {
	want_run 0 /dev/loop0 losetup -f --show -o 1048576 --sizelimit 4194304 "$A"
	want_sys /sys/block/loop0/size 8192
	want_run 0 4194304 blockdev --getsize64 /dev/loop0
	want_sys /sys/block/loop0/loop/offset 1048576
	want_sys /sys/block/loop0/loop/sizelimit 4194304
	want_list /dev/loop0 $COLS "/dev/loop0 7:0 4194304 1048576 0 0 $A 0 512 0"
	want_data /dev/loop0 0 "$work/pat_a"
	# A write through the device lands at offset + position in the file.
	want_run 0 "" dd if="$work/pat_b" of=/dev/loop0 bs=4096 seek=2 oflag=direct conv=notrunc status=none
	want_data "$A" $((1048576 + 8192)) "$work/pat_b"
	# Nothing to read at the size limit.
	want_run 0 "0+0 records in
0+0 records out" dd if=/dev/loop0 of=/dev/null bs=4096 skip=1024 count=1 status=noxfer
	want_run 0 /dev/loop1 losetup -f --show -o 1048576 "$A"
	want_sys /sys/block/loop1/size 129024
	want_sys /sys/block/loop1/loop/sizelimit 0
	# A size limit beyond the end of the file: the file's size.
	want_run 0 /dev/loop2 losetup -f --show --sizelimit 134217728 "$A"
	want_sys /sys/block/loop2/size 131072
	want_list /dev/loop2 SIZELIMIT,OFFSET "134217728 0"
	# An offset that is not a multiple of 512: accepted, size rounded down.
	want_run 0 "losetup: $A: Warning: file does not end on a 512-byte sector boundary; the remaining end of the file will be ignored.
/dev/loop3" losetup -f --show -o 1000 "$A"
	want_sys /sys/block/loop3/size 131070
	want_sys /sys/block/loop3/loop/offset 1000
	# An offset beyond the end of the file: a zero-sized device.
	want_run 0 /dev/loop4 losetup -f --show -o 134217728 "$A"
	want_sys /sys/block/loop4/size 0
	want_run 0 "" losetup -d /dev/loop0 /dev/loop1 /dev/loop2 /dev/loop3 /dev/loop4
}

s_read_only() {
	want_run 0 /dev/loop0 losetup -f --show -r "$A"
	want_list /dev/loop0 NAME,RO "/dev/loop0 1"
	want_sys /sys/block/loop0/ro 1
	want_run 0 1 blockdev --getro /dev/loop0
	want_run 1 "dd: error writing '/dev/loop0': Operation not permitted" \
		dd if="$work/pat_b" of=/dev/loop0 bs=4096 seek=256 oflag=direct conv=notrunc status=none
	want_data "$A" 1048576 "$work/pat_a"
	want_data /dev/loop0 1048576 "$work/pat_a"
	want_run 0 /dev/loop1 losetup -f --show "$A"
	want_list /dev/loop1 NAME,RO "/dev/loop1 0"
	want_sys /sys/block/loop1/ro 0
	want_run 0 "" losetup -d /dev/loop0
	want_run 0 /dev/loop0 losetup -f --show --read-only "$B"
	want_sys /sys/block/loop0/ro 1
	want_run 0 "" losetup -d /dev/loop0 /dev/loop1
}

s_partscan() {
	want_run 0 /dev/loop0 losetup -f --show -P "$P"
	# loop.c scans the table before LOOP_CONFIGURE returns.
	want_sys /sys/block/loop0/loop0p1/size 20480
	want_sys /sys/block/loop0/loop0p1/start 2048
	want_sys /sys/block/loop0/loop0p2/size 32768
	want_sys /sys/block/loop0/loop0p2/start 22528
	want_absent /sys/block/loop0/loop0p3
	want_node /dev/loop0p1 259:0
	want_node /dev/loop0p2 259:1
	want_sys /sys/block/loop0/loop/partscan 1
	want_list /dev/loop0 NAME,PARTSCAN "/dev/loop0 1"
	want_run 0 "loop0 7:0 67108864 loop
loop0p1 259:0 10485760 part
loop0p2 259:1 16777216 part" lsblk -b -r -n -o NAME,MAJ:MIN,SIZE,TYPE /dev/loop0
	want_data /dev/loop0p1 0 "$work/pat_p1"
	want_data /dev/loop0p2 0 "$work/pat_p2"
	want_run 0 "" blockdev --rereadpt /dev/loop0
	want_sys /sys/block/loop0/loop0p2/size 32768
	want_run 0 "" losetup -d /dev/loop0
	want_absent /sys/block/loop0/loop0p1 /sys/block/loop0/loop0p2 /dev/loop0p1 /dev/loop0p2 \
		/sys/block/loop0/loop
	# Without -P (max_part=0): no partitions.
	want_run 0 /dev/loop0 losetup -f --show "$P"
	want_sys /sys/block/loop0/loop/partscan 0
	want_absent /sys/block/loop0/loop0p1 /dev/loop0p1
	want_run 0 "" losetup -d /dev/loop0
	# -P on a given device, detached by -D.
	want_run 0 "" losetup -P /dev/loop5 "$P"
	want_sys /sys/block/loop5/loop5p1/size 20480
	want_node /dev/loop5p2 259:1
	want_run 0 "" losetup -D
	want_absent /sys/block/loop5/loop5p1 /dev/loop5p1 /dev/loop5p2
}

s_block_size() {
	want_run 0 /dev/loop0 losetup -f --show -b 4096 "$A"
	want_list /dev/loop0 NAME,LOG-SEC "/dev/loop0 4096"
	want_sys /sys/block/loop0/queue/logical_block_size 4096
	want_sys /sys/block/loop0/queue/physical_block_size 4096
	want_sys /sys/block/loop0/queue/minimum_io_size 4096
	want_sys /sys/block/loop0/size 131072
	want_run 0 4096 blockdev --getss /dev/loop0
	want_data /dev/loop0 1048576 "$work/pat_a"
	want_run 1 "dd: error reading '/dev/loop0': Invalid argument" \
		dd if=/dev/loop0 of=/dev/null bs=512 count=1 iflag=direct status=none
	# The sector size of a bound device (LOOP_SET_BLOCK_SIZE).
	want_run 0 "" losetup -b 2048 /dev/loop0
	want_list /dev/loop0 NAME,LOG-SEC "/dev/loop0 2048"
	want_sys /sys/block/loop0/queue/logical_block_size 2048
	want_run 0 /dev/loop1 losetup -f --show --sector-size 1024 "$B"
	want_sys /sys/block/loop1/queue/logical_block_size 1024
	want_run 0 /dev/loop2 losetup -f --show "$B"
	want_sys /sys/block/loop2/queue/logical_block_size 512
	want_sys /sys/block/loop2/queue/physical_block_size 512
	run losetup -f --show -b 1000 "$B"
	want "losetup -b 1000 exit status" 1 "$rc"
	want_absent /sys/block/loop3/loop
	want_run 0 "" losetup -d /dev/loop0 /dev/loop1 /dev/loop2
}

s_direct_io() {
	want_run 0 /dev/loop0 losetup -f --show --direct-io=on "$A"
	want_list /dev/loop0 NAME,DIO "/dev/loop0 1"
	want_sys /sys/block/loop0/loop/dio 1
	want_data /dev/loop0 1048576 "$work/pat_a"
	want_run 0 "" losetup --direct-io=off /dev/loop0
	want_list /dev/loop0 NAME,DIO "/dev/loop0 0"
	want_sys /sys/block/loop0/loop/dio 0
	want_run 0 "" losetup --direct-io=on /dev/loop0
	want_sys /sys/block/loop0/loop/dio 1
	want_run 0 "" dd if="$work/pat_b" of=/dev/loop0 bs=4096 seek=4 oflag=direct conv=notrunc status=none
	want_data "$A" 16384 "$work/pat_b"
	want_run 0 /dev/loop1 losetup -f --show --direct-io=off "$A"
	want_sys /sys/block/loop1/loop/dio 0
	# loop.c silently drops direct I/O on an offset that is not aligned to
	# the backing device's logical block size.
	want_run 0 "losetup: $A: Warning: file does not end on a 512-byte sector boundary; the remaining end of the file will be ignored.
/dev/loop2" losetup -f --show --direct-io=on -o 1000 "$A"
	want_list /dev/loop2 NAME,DIO,OFFSET "/dev/loop2 0 1000"
	want_sys /sys/block/loop2/loop/dio 0
	want_run 0 "" losetup -d /dev/loop0 /dev/loop1 /dev/loop2
}

s_capacity() {
	want_run 0 /dev/loop0 losetup -f --show "$G"
	want_run 0 /dev/loop1 losetup -f --show --sizelimit 8388608 "$G"
	want_run 0 /dev/loop2 losetup -f --show -o 1048576 "$G"
	want_sys /sys/block/loop0/size 32768
	want_sys /sys/block/loop1/size 16384
	want_sys /sys/block/loop2/size 30720
	run truncate -s 32M "$G"
	# Growing the file alone does not change the device.
	want_sys /sys/block/loop0/size 32768
	want_run 0 "" losetup -c /dev/loop0
	want_sys /sys/block/loop0/size 65536
	want_run 0 33554432 blockdev --getsize64 /dev/loop0
	want_run 0 "" losetup --set-capacity /dev/loop1
	want_sys /sys/block/loop1/size 16384
	want_run 0 "" losetup -c /dev/loop2
	want_sys /sys/block/loop2/size 63488
	want_run 0 "1+0 records in
1+0 records out" dd if=/dev/loop0 of=/dev/null bs=4096 skip=8000 count=1 status=noxfer
	run truncate -s 16M "$G"
	want_run 0 "" losetup -c /dev/loop0
	want_sys /sys/block/loop0/size 32768
	want_run 0 "" losetup -c /dev/loop2
	want_sys /sys/block/loop2/size 30720
	want_run 1 "losetup: /dev/loop6: set capacity failed: No such device or address" \
		losetup -c /dev/loop6
	want_run 0 "" losetup -d /dev/loop0 /dev/loop1 /dev/loop2
}

s_detach_all() {
	local devs
	devs=$(loop_list)
	want_run 0 /dev/loop0 losetup -f --show "$A"
	want_run 0 /dev/loop1 losetup -f --show -r "$B"
	want_run 0 /dev/loop2 losetup -f --show --direct-io=on "$C"
	want_run 0 /dev/loop3 losetup -f --show -P "$P"
	want_sys /sys/block/loop3/loop3p1/size 20480
	want "bound devices" "loop0 loop1 loop2 loop3 " "$(bound)"
	want_run 0 "" losetup -D
	want_run 0 "" losetup -a
	want "bound devices after -D" "" "$(bound)"
	want_absent /sys/block/loop0/loop /sys/block/loop3/loop3p1 /dev/loop3p1
	want_sys /sys/block/loop2/size 0
	# The devices themselves stay (loop.c never deletes them on detach).
	want "devices after -D" "$devs" "$(loop_list)"
	want_run 0 "" losetup -D
}

s_detach_unbound() {
	want_run 1 "losetup: /dev/loop5: detach failed: No such device or address" \
		losetup -d /dev/loop5
	want_run 1 "losetup: /dev/loop5: detach failed: No such device or address" \
		losetup --detach /dev/loop5
	want_run 0 /dev/loop0 losetup -f --show "$A"
	want_run 0 "" losetup -d /dev/loop0
	want_run 1 "losetup: /dev/loop0: detach failed: No such device or address" \
		losetup -d /dev/loop0
	want_absent /sys/block/loop0/loop
}

s_specific_device() {
	want_run 0 "" losetup /dev/loop3 "$A"
	want_list /dev/loop3 NAME,MAJ:MIN,BACK-FILE "/dev/loop3 7:3 $A"
	want_run 1 "losetup: $B: failed to set up loop device: Device or resource busy" \
		losetup /dev/loop3 "$B"
	want_sys /sys/block/loop3/loop/backing_file "$A"
	want_run 0 "/dev/loop3: $ai_A ($A)" losetup /dev/loop3
	# An unbound device has no loop/ directory for losetup to read.
	want_run 1 "losetup: /dev/loop4: No such file or directory" losetup /dev/loop4
	want_run 0 /dev/loop0 losetup -f --show "$B"
	# A device that does not exist yet is created (/dev/loop-control).
	want_absent /sys/block/loop20
	want_run 0 "" losetup /dev/loop20 "$C"
	want_node /dev/loop20 7:20
	want_sys /sys/block/loop20/loop/backing_file "$C"
	want_sys /sys/block/loop20/size 16384
	want_run 0 "" losetup -d /dev/loop3 /dev/loop20
	want_absent /sys/block/loop3/loop /sys/block/loop20/loop
	want_sys /sys/block/loop20/size 0
	want_run 0 /dev/loop1 losetup -f --show "$C"
	want_run 0 "" losetup -d /dev/loop0 /dev/loop1
}

s_sysfs_attrs() {
	local a
	for a in $LOOP_ATTRS; do
		want_absent /sys/block/loop1/loop/$a
	done
	want_run 0 "" losetup -P -o 1048576 --sizelimit 33554432 --direct-io=on /dev/loop1 "$A"
	want "/sys/block/loop1/loop/ while bound" "$LOOP_ATTRS" "$(ls_names /sys/block/loop1/loop)"
	want_sys /sys/block/loop1/loop/backing_file "$A"
	want_sys /sys/block/loop1/loop/offset 1048576
	want_sys /sys/block/loop1/loop/sizelimit 33554432
	want_sys /sys/block/loop1/loop/autoclear 0
	want_sys /sys/block/loop1/loop/partscan 1
	want_sys /sys/block/loop1/loop/dio 1
	want_sys /sys/block/loop1/size 65536
	want_run 0 "" losetup -d /dev/loop1
	for a in $LOOP_ATTRS; do
		want_absent /sys/block/loop1/loop/$a
	done
	want_absent /sys/block/loop1/loop
	# Bound again without options: no stale value.
	want_run 0 "" losetup /dev/loop1 "$B"
	want "/sys/block/loop1/loop/ bound again" "$LOOP_ATTRS" "$(ls_names /sys/block/loop1/loop)"
	want_sys /sys/block/loop1/loop/backing_file "$B"
	want_sys /sys/block/loop1/loop/offset 0
	want_sys /sys/block/loop1/loop/sizelimit 0
	want_sys /sys/block/loop1/loop/partscan 0
	want_sys /sys/block/loop1/loop/dio 0
	want_sys /sys/block/loop1/size 32768
	want_run 0 "" losetup -d /dev/loop1
	want_absent /sys/block/loop1/loop
}

# want_tree DIR: every file, directory and symlink under DIR with its
# content or target, recorded in the log (so the diff against loop.ko covers
# every attribute the block layer and the driver export, including those no
# expectation above names). Left out: counters and sequence numbers that
# differ between any two runs (stat, inflight, diskseq, uevent's DISKSEQ),
# power/ and trace/. Builtins only: an exec costs half a second on the
# debug kernel under TCG.
want_tree() {
	local root=$1 f rel lines n=0
	shopt -s globstar nullglob
	for f in "$root"/**; do
		rel=${f#"$root"}
		rel=${rel#/}
		case /$rel in
		/ | */stat | */inflight | */diskseq | */uevent | */power | */power/* | \
			*/trace | */trace/*) continue ;;
		esac
		if [ -L "$f" ]; then
			lines=("-> $(readlink "$f")")
		elif [ -d "$f" ]; then
			lines=("<dir>")
		elif [ -r "$f" ] && mapfile -t lines 2>/dev/null <"$f"; then
			n=$((n + 1))
		else
			lines=("<unreadable>")
		fi
		echo "${root##*/}/$rel: ${lines[*]}" >>"$log"
	done
	shopt -u globstar nullglob
	# Not a vacuous listing: the attributes a user reads are there.
	want "$root holds readable attributes" yes "$([ -f "$root/queue/logical_block_size" ] &&
		[ -f "$root/size" ] && [ $n -gt 20 ] && echo yes)"
}

s_sysfs_tree() {
	# Unbound, as created at load.
	want_tree /sys/block/loop0
	# Plain.
	want_run 0 /dev/loop0 losetup -f --show "$A"
	want_tree /sys/block/loop0
	want_run 0 "" losetup -d /dev/loop0
	# Read-only, 4096-byte blocks, direct I/O, offset and size limit.
	want_run 0 /dev/loop0 losetup -f --show -r -b 4096 --direct-io=on \
		-o 1048576 --sizelimit 16777216 "$A"
	want_tree /sys/block/loop0
	want_run 0 "" losetup -d /dev/loop0
	# Partitions, and the partitions' own attributes.
	want_run 0 /dev/loop0 losetup -f --show -P "$P"
	want_tree /sys/block/loop0
	want_run 0 "" losetup -d /dev/loop0
	# Unbound again: nothing of the binding is left.
	want_tree /sys/block/loop0
	# A backing file on ext4 (on loop0): the limits and features that come
	# from the backing file system (write cache, discard, direct-I/O
	# alignment), buffered and direct.
	want_run 0 /dev/loop0 losetup -f --show "$E"
	want_rc 0 mkfs.ext4 -q -F /dev/loop0
	want_rc 0 mount /dev/loop0 "$work/mnt"
	want_rc 0 truncate -s 16M "$work/mnt/f.img"
	want_run 0 /dev/loop1 losetup -f --show "$work/mnt/f.img"
	want_tree /sys/block/loop1
	want_run 0 "" losetup -d /dev/loop1
	want_run 0 /dev/loop1 losetup -f --show --direct-io=on "$work/mnt/f.img"
	want_tree /sys/block/loop1
	want_run 0 "" losetup -d /dev/loop1
	want_rc 0 umount "$work/mnt"
	want_run 0 "" losetup -d /dev/loop0
}

step_cleanup() {
	mountpoint -q "$work/mnt" && umount "$work/mnt"
	return 0
}

steps=(
	"find_show|-f --show prints /dev/loop0; -a, -l, sysfs while bound; -d detaches"
	"json|--json: name, back-file, offset, sizelimit, ro, dio, log-sec, autoclear"
	"find_by_file|-j FILE finds the device by backing file (and -o)"
	"offset_sizelimit|-o and --sizelimit: size, sysfs, data placement"
	"read_only|-r: RO 1, sysfs ro 1, writes fail"
	"partscan|-P: partitions with their sizes appear, vanish on -d"
	"block_size|-b 4096 / --sector-size: LOG-SEC and queue limits"
	"direct_io|--direct-io=on/off: DIO column and loop/dio"
	"capacity|-c after growing and shrinking the backing file"
	"detach_all|-D detaches every device"
	"detach_unbound|-d of an unbound device fails as with loop.ko"
	"specific_device|losetup /dev/loopN FILE (also a new /dev/loop20)"
	"sysfs_attrs|loop/{backing_file,offset,sizelimit,autoclear,partscan,dio} exist exactly while bound"
	"sysfs_tree|every sysfs file of a device unbound, bound plain, ro+4k+dio+offset, -P, on ext4 buffered and direct"
)
# The quick tier leaves out the whole-tree step (40 s on the debug kernel).
[ "$(tier 0 1 1)" = 0 ] && unset 'steps[-1]'

# ------------------------------------------------------------------ files

setup_files() {
	rm -rf "$work"
	mkdir -p "$work" || return 1
	head -c 4096 /dev/urandom >"$work/pat_a" &&
		head -c 4096 /dev/urandom >"$work/pat_b" &&
		head -c 8192 /dev/urandom >"$work/pat_p1" &&
		head -c 8192 /dev/urandom >"$work/pat_p2" &&
		truncate -s 64M "$A" "$P" "$E" && truncate -s 16M "$B" "$G" && truncate -s 8M "$C" &&
		mkdir "$work/mnt" &&
		dd if="$work/pat_a" of="$A" bs=4096 seek=256 conv=notrunc status=none &&
		printf 'label: dos\nstart=2048, size=20480, type=83\nstart=22528, size=32768, type=83\n' |
		sfdisk -q "$P" &&
		dd if="$work/pat_p1" of="$P" bs=512 seek=2048 conv=notrunc status=none &&
		dd if="$work/pat_p2" of="$P" bs=512 seek=22528 conv=notrunc status=none || return 1
	{ read -r ai_A && read -r ai_B && read -r ai_C; } < <(stat -c '[%d]:%i' "$A" "$B" "$C")
	LOG_SUBST=(["$ai_A"]="[DEV]:INO(a.img)" ["$ai_B"]="[DEV]:INO(b.img)" ["$ai_C"]="[DEV]:INO(c.img)")
}

if ! setup_files; then
	t_fail "backing files created"
	t_done
fi
compare_main
