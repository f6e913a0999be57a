#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# A loop device whose backing store hangs: the file system under its
# backing file is frozen (fsfreeze) while the device has dirty pages, and
# `losetup -b` (LOOP_SET_BLOCK_SIZE) waits in sync_blockdev() with the
# device's lo_mutex held, as it does in loop.c. Tasks that then wait for
# that mutex (an open of the device, LOOP_SET_CAPACITY and
# LOOP_GET_STATUS64 on a descriptor opened before, LOOP_CTL_REMOVE of the
# device) wait killably, as in loop.c (mutex_lock_killable): SIGKILL ends each of
# them at once, where a plain mutex_lock would leave them in D state until
# the store comes back (issue 9, item 6). After the thaw the block size
# change completes, the data written before the freeze is in the backing
# file, and the device detaches.
#
# The store stays frozen for a minute or two on the debug kernel under TCG:
# the hung-task detector's timeout is raised meanwhile (and restored), so
# that the writes deliberately held up are not reported as hangs.

. "$(dirname "$0")/lib.sh"

work=$T_SCRATCH/hung-store-test
mnt=$T_SCRATCH/mnt-hung
devs=()
frozen=
pids=()

hung_timeout=$(cat /proc/sys/kernel/hung_task_timeout_secs 2>/dev/null)

cleanup() {
	local i
	[ -n "$frozen" ] && fsfreeze -u "$frozen"
	[ -n "$hung_timeout" ] && echo "$hung_timeout" >/proc/sys/kernel/hung_task_timeout_secs
	exec 4<&-
	for i in "${pids[@]}"; do
		wait "$i" 2>/dev/null
	done
	for ((i = ${#devs[@]} - 1; i >= 0; i--)); do
		[ "$i" = 0 ] && mountpoint -q "$mnt" && umount "$mnt"
		losetup -d "${devs[i]}" 2>/dev/null
	done
	rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work" "$mnt"

# dies_on_sigkill PID WHAT: SIGKILL ends PID within 10 s (dead: gone or a
# zombie), while the store is still frozen.
dies_on_sigkill() {
	local i st
	kill -KILL "$1"
	for ((i = 0; i < 100; i++)); do
		st=$(task_state "$1")
		case $st in
		gone | Z)
			wait "$1" 2>/dev/null
			return 0
			;;
		esac
		nap 0.1
	done
	t_diag "$2: still in state $st 10 s after SIGKILL:" \
		"$(cat "/proc/$1/stack" 2>/dev/null | head -12)"
	return 1
}

# setup: ext4 on a direct loop device; the device under test is a
# buffered loop device over a file in that ext4, with dirty pages in its
# own page cache; then the ext4 is frozen and `losetup -b 4096` holds the
# device's lo_mutex while it waits for those pages to be written.
setup() {
	local low i
	truncate -s 48M "$work/lower.img" || return 1
	low=$(losetup -f --show --direct-io=on "$work/lower.img") || return 1
	devs+=("$low")
	mkfs.ext4 -q -F "$low" && mount "$low" "$mnt" || { t_diag "mkfs/mount $low failed"; return 1; }
	truncate -s 8M "$mnt/store.img" || return 1
	dev=$(losetup -f --show "$mnt/store.img") || return 1
	devs+=("$dev")
	dd if=/dev/urandom of="$work/pattern" bs=1M count=2 status=none || return 1
	# Held open throughout: the last close of a block device writes its
	# dirty pages back (and would wait), and the ioctl cases use it.
	exec 4<"$dev" || return 1
	[ -n "$hung_timeout" ] && echo 600 >/proc/sys/kernel/hung_task_timeout_secs
	fsfreeze -f "$mnt" || { t_diag "fsfreeze -f $mnt failed"; return 1; }
	frozen=$mnt
	# Buffered: the pages stay dirty in $dev's page cache.
	dd if="$work/pattern" of="$dev" bs=1M status=none || { t_diag "dd to $dev failed"; return 1; }
	losetup -b 4096 "$dev" 2>"$work/setbs.err" &
	holder=$!
	pids+=("$holder")
	waits_in_kernel "$holder" || return 1
	# The holder is in sync_blockdev() with lo_mutex held.
	for ((i = 0; i < 20; i++)); do
		grep -q . "/proc/$holder/stack" 2>/dev/null && break
		nap 0.1
	done
	return 0
}

# killable WHAT CMD...: CMD, started now, waits in the kernel and dies on
# SIGKILL.
killable() {
	local what=$1 pid
	shift
	"$@" >/dev/null 2>&1 &
	pid=$!
	pids+=("$pid")
	waits_in_kernel "$pid" || return 1
	dies_on_sigkill "$pid" "$what"
}

open_dev() { exec 3<"$dev"; }
# ioctl_fd4 NAME: the ioctl (no argument, or a loop_info64 buffer for
# LOOP_GET_STATUS64) on descriptor 4, the device opened before the freeze.
ioctl_fd4() {
	exec perl -e 'open(my $f, "<&=", 4) or die "fd 4: $!";
		my $b = "\0" x $ENV{INFO64_SIZE};
		ioctl($f, oct($ENV{$ARGV[0]}), $ARGV[0] eq "LOOP_GET_STATUS64" ? $b : 0) or exit 1' "$1"
}
ctl_remove() { exec perl -e "$T_CTL_REMOVE" "${dev#/dev/loop}"; }

# recovers: thaw; the block size change completes, the data is in the
# backing file, the device detaches.
recovers() {
	local rc
	fsfreeze -u "$mnt" && frozen= || return 1
	[ -n "$hung_timeout" ] && echo "$hung_timeout" >/proc/sys/kernel/hung_task_timeout_secs
	wait "$holder"
	rc=$?
	exec 4<&-
	if [ "$rc" != 0 ]; then
		t_diag "losetup -b 4096 $dev after the thaw: rc=$rc: $(cat "$work/setbs.err")"
		return 1
	fi
	want_lbs=$(cat "/sys/block/${dev#/dev/}/queue/logical_block_size")
	[ "$want_lbs" = 4096 ] || { t_diag "$dev: logical_block_size $want_lbs, want 4096"; return 1; }
	losetup -d "$dev" || return 1
	devs=("${devs[0]}")
	sync
	cmp -n 2M "$mnt/store.img" "$work/pattern" ||
		{ t_diag "the data written before the freeze is not in the backing file"; return 1; }
	umount "$mnt" && losetup -d "${devs[0]}" || return 1
	devs=()
}

if ! setup; then
	t_fail "setup: a loop device over a frozen file system, losetup -b waiting with lo_mutex held"
	t_done
fi
t_check "an open of the device waiting for lo_mutex dies on SIGKILL" killable "open" open_dev
t_check "LOOP_SET_CAPACITY waiting for lo_mutex dies on SIGKILL" killable "LOOP_SET_CAPACITY" ioctl_fd4 LOOP_SET_CAPACITY
t_check "LOOP_GET_STATUS64 waiting for lo_mutex dies on SIGKILL" killable "LOOP_GET_STATUS64" ioctl_fd4 LOOP_GET_STATUS64
t_check "LOOP_CTL_REMOVE of the device waiting for lo_mutex dies on SIGKILL" killable "LOOP_CTL_REMOVE" ctl_remove
t_check "after the thaw: the block size change completes, the data is in the file, the device detaches" recovers
t_done
