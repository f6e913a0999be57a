#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# stress-ng's loop stressor, an external client written against loop.c,
# on the driver under test (tests/run.sh runs it on rust_loop and on
# loop.ko alike). Each worker loops over: LOOP_CTL_ADD of a random index
# from 1024 (or LOOP_CTL_GET_FREE), open, LOOP_SET_FD with a bad fd and a
# good one, the loop/ sysfs attributes, LOOP_GET_STATUS, 2 MiB of writes,
# LOOP_SET_STATUS with AUTOCLEAR|READ_ONLY and an XOR "encryption" (loop.c
# rejects it), mmap of the device, LOOP_GET/SET_STATUS64, a grown backing
# file with LOOP_SET_CAPACITY, LOOP_SET_BLOCK_SIZE with valid and invalid
# sizes, LOOP_SET_DIRECT_IO on and off, LOOP_CHANGE_FD (bad fd, and on a
# writable device), LOOP_CONFIGURE with a bad fd and a NULL argument, reads
# back, fallocate and ftruncate of the device, LOOP_CLR_FD, close,
# LOOP_CTL_REMOVE (retried on EBUSY), and an unknown ioctl.
#
# stress-ng fails a worker (non-zero exit) when /dev/loop-control cannot be
# opened or LOOP_CLR_FD fails with anything but EBUSY; on top of that this
# test checks that work was done (bogo ops), and that the driver is left
# consistent: nothing bound, every device in /sys/block has its /dev node,
# a fresh device can be bound and read, and the driver unloads (tests/run.sh).
# The kernel log is checked for splats by scripts/check.sh.

. "$(dirname "$0")/lib.sh"

work=$T_SCRATCH/stressng-test
dev=
cleanup() {
	[ -n "$dev" ] && losetup -d "$dev" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
rm -rf "$work"
mkdir -p "$work"

if ! command -v stress-ng >/dev/null; then
	t_fail "stress-ng is installed in the guest"
	t_done
fi

secs=${STRESSNG_SECONDS:-$(tier 3 30 300)}
t0=$SECONDS
stress-ng --loop 2 --timeout "${secs}s" --temp-path "$work" --metrics-brief \
	--yaml "$work/out.yaml" >"$work/log" 2>&1
st=$?
t_diag "stress-ng --loop 2 --timeout ${secs}s: exit $st in $((SECONDS - t0)) s"
ops=$(awk '$1 == "bogo-ops:" { print $2; exit }' "$work/out.yaml" 2>/dev/null)
if [ "$st" = 0 ]; then
	t_ok "stress-ng --loop 2 for ${secs} s: no worker fails"
else
	t_diag "$(cat "$work/log")"
	t_fail "stress-ng --loop 2 for ${secs} s: no worker fails"
fi
if [ "${ops:-0}" -gt 0 ] 2>/dev/null; then
	t_diag "bogo ops: $ops"
	t_ok "stress-ng --loop: loop cycles completed"
else
	t_diag "bogo ops: '${ops:-}'" "$(cat "$work/log")"
	t_fail "stress-ng --loop: loop cycles completed"
fi

# The state it leaves: every device stress-ng made was removed or is
# unbound, and sysfs and /dev agree.
left=$(bound)
if [ -z "$left" ]; then
	t_ok "stress-ng --loop: no device left bound"
else
	t_diag "still bound: $left"
	t_fail "stress-ng --loop: no device left bound"
fi
bad=
for d in /sys/block/loop*; do
	[ -e "$d" ] || continue
	n=${d##*/}
	read -r mm <"$d/dev" || continue
	[ -b "/dev/$n" ] && [ "$(stat -c '%Hr:%Lr' "/dev/$n")" = "$mm" ] || bad+="$n($mm) "
done
if [ -z "$bad" ]; then
	t_ok "stress-ng --loop: every device in /sys/block has its /dev node"
else
	t_diag "without a matching node: $bad"
	t_fail "stress-ng --loop: every device in /sys/block has its /dev node"
fi

# Still usable: a new binding serves the data of its file.
head -c 1M /dev/urandom >"$work/pat"
truncate -s 4M "$work/img"
dd if="$work/pat" of="$work/img" bs=1M seek=1 conv=notrunc status=none
if dev=$(losetup -f --show "$work/img") &&
	cmp -s -n 1048576 -i 1048576:0 "$dev" "$work/pat" &&
	losetup -d "$dev"; then
	dev=
	t_ok "stress-ng --loop: afterwards losetup -f binds a device that reads its file"
else
	t_diag "device: '${dev:-}'"
	t_fail "stress-ng --loop: afterwards losetup -f binds a device that reads its file"
fi
t_done
