#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# A backing file system that has fallocate() but not every mode of it:
# tmpfs punches holes but refuses FALLOC_FL_ZERO_RANGE with EOPNOTSUPP, so
# the first BLKZEROOUT that reaches a loop device over a tmpfs file fails
# in the worker, which then clears the device's write-zeroes limit. That
# clearing races LOOP_SET_BLOCK_SIZE, which takes the queue's limits_lock,
# waits for the queue to freeze (for the requests in flight, the zeroout
# among them) and recomputes the limits, enabling write-zeroes again.
# loop.c clears the limits under limits_lock from inside the request
# (loop_clear_limits(), with an XXX saying it is against the locking
# protocol): the request waits for the lock, the ioctl for the request, and
# both hang (issue 9, item 5). rust_loop clears them only when the lock is
# free; this test races BLKZEROOUT against LOOP_SET_BLOCK_SIZE 512/1024
# (two perl loops, no exec per call) and wants both to finish, the data to
# stay intact and the device to detach.
# Not run on loop.ko, which deadlocks here within seconds (kworker in
# lo_fallocate() waiting for limits_lock, held by the ioctl waiting in
# blk_mq_freeze_queue), as rust_loop did before 3e53a03 (hung-task report
# with the kworker in rust_loop_io::fallocate).

. "$(dirname "$0")/lib.sh"

work=$T_SCRATCH/limits-test
tmp=$T_SCRATCH/mnt-limits
dev=
DUR=$(tier 2 20 120)

cleanup() {
	[ -n "$dev" ] && losetup -d "$dev" 2>/dev/null
	mountpoint -q "$tmp" && umount "$tmp"
	rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work" "$tmp"

# alive PID: PID runs and is not a zombie.
alive() {
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	s=${s##*) }
	[ "${s%% *}" != Z ]
}

# loop_ioctl DEV SECONDS WHAT: one perl process repeating an ioctl on DEV
# (opened read-write, not exclusively) for SECONDS: WHAT is "zeroout"
# (BLKZEROOUT of the first MiB) or "bsize" (LOOP_SET_BLOCK_SIZE, 1024 and
# 512 in turn). Prints "WHAT ok=N busy=N" and a line per other failure.
# EBUSY is what loop.c answers too: both take a temporary claim on the
# device (bd_prepare_to_claim) and refuse each other's.
loop_ioctl() {
	perl -e '
		my ($dev, $dur, $what) = @ARGV;
		open(my $f, "+<", $dev) or die "$dev: $!";
		my ($ok, $busy, $bs) = (0, 0, 512);
		my $end = time + $dur;
		while (time < $end) {
			my $r;
			if ($what eq "zeroout") {
				my $range = pack("QQ", 0, 1 << 20);
				$r = ioctl($f, oct($ENV{BLKZEROOUT}), $range);
			} else {
				$bs = $bs == 512 ? 1024 : 512;
				$r = ioctl($f, oct($ENV{LOOP_SET_BLOCK_SIZE}), $bs);
			}
			if ($r) { $ok++ } elsif ($!{EBUSY}) { $busy++ } else { print "$what: $!\n" }
		}
		print "$what ok=$ok busy=$busy\n";
	' "$@"
}

race() {
	local z b i zout=$work/zero.out bout=$work/bs.out
	mount -t tmpfs -o size=64M tmpfs "$tmp" || return 1
	dd if=/dev/urandom of="$tmp/f.img" bs=1M count=8 status=none || return 1
	dd if="$tmp/f.img" of="$work/orig" bs=1M count=8 status=none || return 1
	dev=$(losetup -f --show "$tmp/f.img") || { t_diag "losetup failed"; return 1; }
	loop_ioctl "$dev" "$DUR" zeroout >"$zout" 2>&1 &
	z=$!
	loop_ioctl "$dev" "$DUR" bsize >"$bout" 2>&1 &
	b=$!
	for ((i = 0; i < (DUR + 90) * 10; i++)); do
		alive $z || alive $b || break
		nap 0.1
	done
	if alive $z || alive $b; then
		t_diag "still running $((DUR + 90)) s after the start (deadlock?):" \
			"$(ps -o pid,stat,wchan:30,cmd -p "$z,$b")" \
			"$(cat "/proc/$z/stack" "/proc/$b/stack" 2>/dev/null)"
		dev=
		return 1
	fi
	wait $z $b
	t_diag "$(cat "$zout" "$bout")"
	if grep -qv " ok=" "$zout" "$bout" || ! grep -q "zeroout ok=[1-9]" "$zout" ||
		! grep -q "bsize ok=[1-9]" "$bout"; then
		t_diag "want no failure but EBUSY, and some of each succeeding"
		return 1
	fi
	cmp -n 1M "$dev" /dev/zero || { t_diag "the zeroed MiB is not zero"; return 1; }
	cmp -i 1M -n 7M "$dev" "$work/orig" || { t_diag "the rest of the device changed"; return 1; }
	losetup -d "$dev" || return 1
	dev=
	umount "$tmp"
}

if [ "${LOOP_DRIVER:-rust}" = c ]; then
	t_skip "BLKZEROOUT unsupported by tmpfs racing LOOP_SET_BLOCK_SIZE: no deadlock" \
		"loop.c deadlocks here (loop_clear_limits() under limits_lock inside a request)"
	t_done
fi
t_check "BLKZEROOUT unsupported by tmpfs racing LOOP_SET_BLOCK_SIZE: no deadlock, data intact" race
t_done
