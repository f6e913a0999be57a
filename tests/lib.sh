# SPDX-License-Identifier: GPL-2.0
#
# Helpers for the shell tests (tests/*_test.sh), the shell counterpart of
# tests/common.h: the driver under test (LOOP_DRIVER=rust|c, set by
# tests/run.sh), loading and unloading it, and TAP output.
#
# A shell test sources this file, calls `t_ok`/`t_fail`/`t_skip` (or
# `t_check DESCRIPTION COMMAND...`) once per test case, and ends with
# `t_done`.

set -u

T_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
T_SCRATCH=${RL_SCRATCH:-/tmp}
t_failed=0

# The loop UAPI's numbers (LOOP_CTL_REMOVE=0x4c81, ...), from the kernel's
# headers by tests/loop_uapi_gen.c; exported, for Perl's $ENV{...}.
set -a
. "$T_TOP/build/tests/loop_uapi.sh"
set +a

drv_name() { [ "${LOOP_DRIVER:-rust}" = c ] && echo loop || echo rust_loop; }

# Load the driver under test with the given parameters.
drv_load() {
	if [ "${LOOP_DRIVER:-rust}" = c ]; then
		modprobe loop "$@"
	else
		insmod "${RUST_LOOP_KO:-$T_TOP/build/test/rust_loop.ko}" "$@"
	fi
}

# Detach every loop device and unload the driver (retrying while a just
# closed device finishes its release).
# Builtins where they do: tests/run.sh calls it twice per program.
drv_unload() {
	local i m=rust_loop d
	[ "${LOOP_DRIVER:-rust}" = c ] && m=loop
	[ -d "/sys/module/$m" ] || return 0
	for d in /sys/block/loop*/loop; do
		[ -e "$d" ] && { timeout -k 5 60 losetup -D 2>/dev/null; break; }
	done
	for ((i = 0; i < 100; i++)); do
		rmmod "$m" 2>/dev/null && return 0
		nap 0.1
	done
	return 1
}

drv_reload() { drv_unload && drv_load "$@"; }

# LOOP_CTL_REMOVE of the index in $ARGV[0], as a perl program (a test that
# must signal the process itself runs `exec perl -e "$T_CTL_REMOVE" N`).
T_CTL_REMOVE='open(my $f, "+<", "/dev/loop-control") or die "loop-control: $!";
	ioctl($f, oct($ENV{LOOP_CTL_REMOVE}), $ARGV[0] + 0) or exit 1'

# ctl_remove_index N: LOOP_CTL_REMOVE of loopN.
ctl_remove_index() { perl -e "$T_CTL_REMOVE" "$1"; }

# nap SECONDS: sleep without an exec (sleep(1) is one, about 50 ms of the
# debug kernel under TCG, more than the nap of a polling loop): a read
# with a timeout on a pipe that this shell holds open for writing too, so
# it never has data nor reaches its end. The pipe is opened at the first
# nap, as $T_NAP_FD (tests/run.sh closes it before starting a program).
nap() {
	local x
	[ -n "${T_NAP_FD:-}" ] || exec {T_NAP_FD}<> <(:)
	read -r -t "$1" -u "$T_NAP_FD" x || :
}

t_ok() { echo "ok - $*"; }
t_fail() { echo "not ok - $*"; t_failed=1; }
t_skip() { echo "ok - $1 # SKIP ${2:-}"; }

# t_check DESCRIPTION COMMAND...: one test case, passing if COMMAND succeeds.
t_check() {
	local desc=$1
	shift
	if "$@"; then t_ok "$desc"; else t_fail "$desc"; fi
}

# t_diag LINE...: diagnostics, "# " before every line of every argument
# (with builtins only: a fork and exec cost a second in a busy guest).
t_diag() {
	local a l
	for a; do
		while IFS= read -r l; do echo "# $l"; done <<<"$a"
	done
}

# task_state PID: the state letter of /proc/PID/stat, or "gone".
task_state() {
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo gone; return; }
	s=${s##*) }
	echo "${s%% *}"
}

# waits_in_kernel PID: within 30 s, PID sleeps uninterruptibly (D: a
# killable mutex wait shows as D too).
waits_in_kernel() {
	local i
	for ((i = 0; i < 300; i++)); do
		[ "$(task_state "$1")" = D ] && return 0
		nap 0.1
	done
	t_diag "pid $1 never waited in the kernel (state $(task_state "$1"))"
	return 1
}

# tier QUICK NORMAL FULL: the value for the test tier (README.md): QUICK
# with RL_QUICK set (make check QUICK=1), FULL with RL_FULL set (make check
# FULL=1), NORMAL otherwise; tests/common.h's tier_count().
tier() {
	if [ -n "${RL_QUICK:-}" ]; then
		echo "$1"
	elif [ -n "${RL_FULL:-}" ]; then
		echo "$3"
	else
		echo "$2"
	fi
}

# fails_with MESSAGE CMD...: CMD fails within 120 s and says MESSAGE.
fails_with() {
	local msg=$1 out rc
	shift
	out=$(timeout 120 "$@" 2>&1)
	rc=$?
	if [ "$rc" = 124 ]; then
		t_diag "\`$*\` did not finish in 120 s"
		return 1
	fi
	if [ "$rc" = 0 ] || [[ $out != *"$msg"* ]]; then
		t_diag "\`$*\`: rc=$rc, output '$out', want a failure with '$msg'"
		return 1
	fi
}

t_done() { exit "$t_failed"; }

# sysread PATH: $v = the file's first line, or <absent> (no fork).
sysread() {
	v="<absent>"
	[ -e "$1" ] || return 0
	v=
	IFS= read -r v 2>/dev/null <"$1"
	return 0
}

# loop_list [loop]: every loop device, or (with "loop") the bound ones, by
# ascending index, as "loop0 loop3 ".
loop_list() {
	local d i idx=()
	for d in /sys/block/loop*; do
		i=${d##*/loop}
		[ -n "${1:-}" ] && [ ! -e "$d/loop" ] && continue
		idx[i]=1
	done
	[ ${#idx[@]} = 0 ] || printf 'loop%s ' "${!idx[@]}"
}

# bound: the bound loop devices.
bound() { loop_list loop; }

# worker_elsewhere DEV: DEV's worker_elsewhere counter in rust_loop's
# debugfs (requests that sent the worker to the next CPU:
# sys/placement.rs), 0 for loop.ko, which has no such counter.
worker_elsewhere() {
	local name value
	[ "${LOOP_DRIVER:-rust}" = c ] && { echo 0; return; }
	while read -r name value; do
		[ "$name" = worker_elsewhere ] && { echo "$value"; return; }
	done <"/sys/kernel/debug/rust_loop/${1#/dev/}"
	echo 0
}

# Kernel log checks per test case, for tests that provoke the kernel
# (scripts/check.sh checks the whole log again at the end). A test using
# them sets kmsg_mark=$(dmesg | wc -l) first (not done here: a dmesg costs
# every test program an exec).
kmsg_splat='WARNING:|BUG:|Oops|KASAN|circular locking|recursive locking|inconsistent lock state|blocked for more than|general protection fault|refcount_t:|list_add corruption|list_del corruption'

# kmsg_clean: no splat in the kernel log since the last call.
kmsg_clean() {
	local new
	new=$(dmesg | tail -n +"$((kmsg_mark + 1))")
	kmsg_mark=$((kmsg_mark + $(printf '%s' "$new" | grep -c '')))
	if printf '%s\n' "$new" | grep -Eq "$kmsg_splat"; then
		t_diag "kernel log:" "$(printf '%s\n' "$new" | grep -E -A20 "$kmsg_splat" | head -40)"
		return 1
	fi
	return 0
}

# scsi_debug_disk: prints /dev/sdX of the scsi_debug disk once it appears
# (within 5 s after modprobe scsi_debug); fails if none does. The SCSI disk
# driver is a module on Debian's kernel, which udev would load: the guest
# has no udev, so it is loaded here (built in on the project's kernels).
scsi_debug_disk() {
	local disk i
	modprobe -q sd_mod || :
	for ((i = 0; i < 50; i++)); do
		for disk in /sys/bus/pseudo/drivers/scsi_debug/adapter*/host*/target*/*/block/*; do
			[ -b "/dev/${disk##*/}" ] && { echo "/dev/${disk##*/}"; return 0; }
		done
		nap 0.1
	done
	return 1
}
