#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# rust_loop's request counters in debugfs, /sys/kernel/debug/rust_loop/loopN
# (loop.ko has none; the cases skip there):
#
#  - a new device's file exists and counts nothing (every counter 0);
#  - 8 direct 4 KiB writes and 4 direct 4 KiB reads through the device are
#    counted as 8 writes of 32768 bytes and at least 4 reads of at least
#    16384 bytes (nothing else writes; a reader such as blkid may read);
#  - LOOP_CTL_REMOVE removes the file with the device;
#  - LOOP_CTL_REMOVE and LOOP_CTL_ADD of the same index, 10 times in a
#    row: the new device has its file every time, also a moment later (the
#    old device's file must go at once, not when the old device is freed,
#    or the new one's creation fails with EEXIST and the old one's removal
#    takes the name away later);
#  - an open counters file holds the module: rmmod is refused while it is
#    open, and closing it, then unloading, leaves no splat (with debugfs
#    file operations that have no owner, rmmod succeeds and the close
#    calls into the unloaded module: an oops in full_proxy_release).

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
		"the file goes with the device" "a new device of a removed index has its file" \
		"an open file holds the module"; do
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
	for n in reads writes flushes discards write_zeroes bytes_read bytes_written worker_elsewhere; do
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

# The index removed above is added again, then LOOP_CTL_REMOVE and
# LOOP_CTL_ADD of it 10 times; fails at the first new device without its
# file, right after LOOP_CTL_ADD or 0.1 s later.
readd() {
	local n=${f##*/loop}
	perl -e '
		my ($n, $times, $dir) = @ARGV;
		open(my $c, "+<", "/dev/loop-control") or die "loop-control: $!";
		ioctl($c, oct($ENV{LOOP_CTL_ADD}), $n + 0) or die "LOOP_CTL_ADD $n: $!";
		for my $i (1 .. $times) {
			ioctl($c, oct($ENV{LOOP_CTL_REMOVE}), $n + 0) or die "LOOP_CTL_REMOVE $n: $!";
			ioctl($c, oct($ENV{LOOP_CTL_ADD}), $n + 0) or die "LOOP_CTL_ADD $n: $!";
			-e "$dir/loop$n" or die "round $i: no $dir/loop$n after LOOP_CTL_ADD\n";
			select(undef, undef, undef, 0.1);
			-e "$dir/loop$n" or die "round $i: $dir/loop$n gone 0.1 s after LOOP_CTL_ADD\n";
		}' "$n" 10 "$dir" 2>&1 || return 1
}
t_check "stats: a new device of a removed index has its file" readd

pinned() {
	local rc=0
	kmsg_mark=$(dmesg | wc -l)
	exec {fd}<"$f" || return 1
	if rmmod rust_loop 2>/dev/null; then
		# The close below then runs the unloaded module's code.
		t_diag "rmmod succeeded with $f open"
		rc=1
	fi
	local line
	read -r line <&"$fd" || { t_diag "no line from the open $f"; rc=1; }
	exec {fd}<&-
	if [ -d /sys/module/rust_loop ]; then
		drv_unload || { t_diag "rmmod failed after the close"; return 1; }
	fi
	drv_load || return 1
	kmsg_clean || rc=1
	return $rc
}
t_check "stats: an open file holds the module" pinned

t_done
