#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# rust_loop's request counters in debugfs, /sys/kernel/debug/rust_loop/loopN
# (loop.ko has none; the cases skip there):
#
#  - a new device's file exists and counts nothing;
#  - 8 direct 4 KiB writes and 4 direct 4 KiB reads through the device are
#    counted as 8 writes of 32768 bytes and at least 4 reads of at least
#    16384 bytes (nothing else writes; a reader such as blkid may read);
#  - LOOP_CTL_REMOVE removes the file with the device.

. "$(dirname "$0")/lib.sh"

work=$T_SCRATCH/stats-test
dir=/sys/kernel/debug/rust_loop
dev=

cleanup() {
	[ -n "$dev" ] && losetup -d "$dev" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work"

if [ "${LOOP_DRIVER:-rust}" = c ]; then
	for c in "new device counts nothing" "reads and writes are counted" \
		"the file goes with the device"; do
		t_skip "stats: $c" "loop.ko has no debugfs counters"
	done
	t_done
fi

# counter NAME FILE: the value of the counter NAME in FILE.
counter() {
	local name value
	while read -r name value; do
		[ "$name" = "$1" ] && { echo "$value"; return 0; }
	done <"$2"
	return 1
}

f=$dir/$(basename "$(losetup -f)")

new_device() {
	[ -f "$f" ] || { t_diag "no file $f"; return 1; }
	local n v
	for n in reads writes flushes discards write_zeroes bytes_read bytes_written; do
		v=$(counter $n "$f") || { t_diag "$f has no $n: $(cat "$f")"; return 1; }
		[ "$v" = 0 ] || { t_diag "$n is $v on an unused device"; return 1; }
	done
}
t_check "stats: new device counts nothing" new_device

counted() {
	truncate -s 1M "$work/img" || return 1
	dev=$(losetup -f --show "$work/img") || { t_diag "losetup failed"; return 1; }
	f=$dir/$(basename "$dev")
	dd if=/dev/zero of="$dev" bs=4k count=8 oflag=direct status=none || return 1
	dd if="$dev" of=/dev/null bs=4k count=4 iflag=direct status=none || return 1
	local w bw r br
	w=$(counter writes "$f") && bw=$(counter bytes_written "$f") &&
		r=$(counter reads "$f") && br=$(counter bytes_read "$f") ||
		{ t_diag "$f: $(cat "$f")"; return 1; }
	if [ "$w" != 8 ] || [ "$bw" != 32768 ] || [ "$r" -lt 4 ] || [ "$br" -lt 16384 ]; then
		t_diag "$f after 8 writes and 4 reads of 4 KiB:" "$(cat "$f")"
		return 1
	fi
}
t_check "stats: reads and writes are counted" counted

removed() {
	losetup -d "$dev" || return 1
	dev=
	local n=${f##*/loop}
	ctl_remove_index "$n" || { t_diag "LOOP_CTL_REMOVE $n failed"; return 1; }
	[ ! -e "$f" ] || { t_diag "$f still there after LOOP_CTL_REMOVE"; return 1; }
}
t_check "stats: the file goes with the device" removed

t_done
