#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The test runner inside the guest (scripts/check.sh boots the test kernel
# and calls it). It runs every test program once per driver, rust_loop.ko
# and the kernel's own loop.ko, and prints one TAP result line per test case
# ("ok - rust_loop: ctl_test: add_returns_index"); scripts/check.sh numbers
# them, checks the kernel log and prints the totals.
#
#   tests/run.sh [-k RUST_LOOP_KO] [-d "rust c"] [-q QUEUE] [-l LABEL] [FILTER...]
#
# FILTER keeps the programs whose name contains one of the words. With
# -q, several guests share the work: a program runs in the guest that
# first makes the directory QUEUE/DRIVER-PROGRAM (mkdir is atomic on the
# host directory they share), so each runs once. LABEL names this guest
# in its kmemleak result.

set -u
top=$(cd "$(dirname "$0")/.." && pwd)
ko=$top/build/test/rust_loop.ko
drivers="rust c"
queue= label=
while getopts "k:d:q:l:" opt; do
	case $opt in
	k) ko=$OPTARG ;;
	d) drivers=$OPTARG ;;
	q) queue=$OPTARG ;;
	l) label=" ($OPTARG)" ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))
filters="$*"

export RUST_LOOP_KO=$ko
export RL_SCRATCH=${RL_SCRATCH:-/tmp}
bin=$top/build/tests

# Test programs: the shell tests tests/*_test.sh, the C kselftests built
# from tests/*_test.c into build/tests, then their 32-bit builds NAME-m32
# listed in build/tests/compat-tests (tests/Makefile, with the kselftest
# filter options that pick the cases that go through compat_ioctl). One
# entry per line: "name path [args]".
# With RL_QUICK the 32-bit builds are left out (they are the same
# programs, built for i386); with RL_FULL they run whole.
programs() {
	local f args p
	# The longest programs first (dkms_test on Debian's kernel, where it
	# builds the module; the others on the debug kernel): guests sharing a
	# queue end closer together when the long programs go first. Then the
	# other shell tests, then the other C tests.
	local first=(dkms_test stack_test race_test fs_test ctl_test losetup_test
		mount_test blktests_loop_test error_test io_test ltp_loop_test)
	local -A listed=()
	for p in "${first[@]}"; do
		for f in "$top/tests/$p.sh" "$top/tests/$p.c"; do
			[ -e "$f" ] || continue
			case $f in
			*.sh) echo "$p $f" ;;
			*) echo "$p $bin/$p" ;;
			esac
			listed[$p]=1
		done
	done
	for f in "$top"/tests/*_test.sh; do
		[ -e "$f" ] || continue
		p=${f##*/}
		p=${p%.sh}
		[ -n "${listed[$p]:-}" ] || echo "$p $f"
	done
	for f in "$top"/tests/*_test.c; do
		[ -e "$f" ] || continue
		p=${f##*/}
		p=${p%.c}
		[ -n "${listed[$p]:-}" ] || echo "$p $bin/$p"
	done
	if [ -n "${RL_QUICK:-}" ]; then
		:
	elif [ -r "$bin/compat-tests" ]; then
		while read -r f args; do
			[ -n "${RL_FULL:-}" ] && args=
			echo "$f-m32 $bin/$f-m32 $args"
		done <"$bin/compat-tests"
	else
		echo "compat-tests $bin/compat-tests"
	fi
}

selected() {
	local f
	[ -z "$filters" ] && return 0
	for f in $filters; do
		case "$1" in *"$f"*) return 0 ;; esac
	done
	return 1
}

# The driver helpers of the shell tests: drv_name, drv_load, drv_unload.
# shellcheck source=tests/lib.sh
. "$top/tests/lib.sh"

# Detach and unmount whatever a test left behind and unload the driver.
cleanup() {
	local dev mnt rest
	while read -r dev mnt rest; do
		case $mnt in /scratch/mnt*) umount -l "$mnt" 2>/dev/null ;; esac
	done </proc/mounts
	LOOP_DRIVER=$1 drv_unload
}

# Turn one program's kselftest output into prefixed result lines. Bash,
# not awk, so that it can read the clock without a fork: a result that
# took RL_SLOW_CASE seconds or more (default 10) gets a "# slow:" line,
# which is how the expensive cases are found.
filter() {
	local prefix=$1 line not results=0 now t0=$EPOCHREALTIME us
	local slow=$((${RL_SLOW_CASE:-10} * 1000000))
	while IFS= read -r line; do
		case $line in
		"ok "* | "not ok "*)
			not=
			[ "${line#not }" != "$line" ] && not="not " && line=${line#not }
			line=${line#ok}
			line=${line#"${line%%[! ]*}"}
			line=${line#"${line%%[!0-9]*}"}
			line=${line#"${line%%[! ]*}"}
			line=${line#- }
			line=${line#global.}
			echo "${not}ok - $prefix$line"
			results=$((results + 1))
			now=$EPOCHREALTIME
			us=$(((${now/./} - ${t0/./})))
			[ "$us" -ge "$slow" ] && echo "# slow: $((us / 1000000)) s: $prefix$line"
			t0=$now
			;;
		"TAP version"* | 1..[0-9]*) ;;
		"#"*"  RUN  "*) echo "$line"; t0=$EPOCHREALTIME ;;
		"#"*) echo "$line" ;;
		*) echo "# $line" ;;
		esac
	done
	[ "$results" -gt 0 ] || return 3
}

# kmemleak is on unless the kernel was booted with kmemleak=off (the
# quick tier): then its result is a skip, not a silent pass.
kmemleak=
if [ -w /sys/kernel/debug/kmemleak ] && ! grep -qw kmemleak=off /proc/cmdline; then
	kmemleak=1
	echo clear >/sys/kernel/debug/kmemleak
fi

# Seconds a program may run: 30 min; 4 h in the slow tier, whose 10^6-call
# fuzz takes about 16 min on loop.ko's release kernel and, on the debug
# kernel, over 2 h when the host is busy (500 000 calls of the 32-bit
# copy took 77 min with eight guests on two cores).
limit=1800
[ -n "${RL_FULL:-}" ] && limit=14400

# forks: $nforks = processes created since boot, $nuser and $nsys = the
# CPU time spent in user space and in the kernel, in clock ticks
# (/proc/stat), read with builtins. Every fork and exec costs the debug
# kernel under TCG about 50 ms, so a program's count of them is most of
# its time.
forks() {
	local k u n s rest
	nforks=0 nuser=0 nsys=0
	while read -r k u n s rest; do
		case $k in
		cpu) nuser=$((u + n)) nsys=$s ;;
		processes) nforks=$u && return ;;
		esac
	done </proc/stat
}
ticks=100 # USER_HZ, the unit of /proc/stat on every architecture

for drv in $drivers; do
	name=$(LOOP_DRIVER=$drv drv_name)
	for d in rust c; do cleanup "$d" >/dev/null; done
	while read -r prog path args; do
		selected "$prog" || continue
		if [ -n "$queue" ] && ! mkdir "$queue/$drv-$prog" 2>/dev/null; then
			continue
		fi
		prefix="$name: $prog: "
		start=$SECONDS
		forks
		start_forks=$nforks start_user=$nuser start_sys=$nsys
		echo "# ---- $name: $prog"
		if [ ! -x "$path" ]; then
			echo "not ok - $prefix(program $path missing)"
			continue
		fi
		if ! LOOP_DRIVER=$drv drv_load; then
			echo "not ok - ${prefix}driver loads"
			continue
		fi
		# The program gets no descriptor of this shell's (nap's pipe).
		if [ -n "${T_NAP_FD:-}" ]; then
			exec {T_NAP_FD}<&-
			unset T_NAP_FD
		fi
		# Line-buffered, so that a crash or a hang loses no output
		# (the 32-bit programs do it themselves, tests/common.h).
		buf="stdbuf -oL -eL"
		case $prog in *-m32) buf= ;; esac
		# shellcheck disable=SC2086 # $args are words
		LOOP_DRIVER=$drv timeout -k 10 "$limit" $buf "$path" $args 2>&1 | filter "$prefix"
		st=("${PIPESTATUS[@]}")
		if [ "${st[0]}" != 0 ] && [ "${st[1]}" = 3 ]; then
			echo "not ok - $prefix(exited with status ${st[0]} before any result)"
		elif [ "${st[0]}" = 124 ] || [ "${st[0]}" = 137 ]; then
			echo "not ok - $prefix(timed out)"
		fi
		if ! cleanup "$drv"; then
			echo "not ok - ${prefix}driver unloads after the test"
			lsmod >&2
		fi
		# Collected into a table by scripts/check.sh.
		forks
		echo "# time: $name $prog $((SECONDS - start)) s, $((nforks - start_forks)) processes," \
			"user $(((nuser - start_user) / ticks)) s, kernel $(((nsys - start_sys) / ticks)) s"
	done < <(programs)
done

if [ -n "$filters" ]; then
	:
elif grep -qw kmemleak=off /proc/cmdline; then
	echo "ok - kmemleak$label: no leaked objects # SKIP booted with kmemleak=off (quick tier)"
elif [ -n "$kmemleak" ]; then
	# Two scans: an object is reported only once it was seen unreferenced twice.
	echo scan >/sys/kernel/debug/kmemleak
	sleep 6
	echo scan >/sys/kernel/debug/kmemleak
	leaks=$(cat /sys/kernel/debug/kmemleak)
	if [ -z "$leaks" ]; then
		echo "ok - kmemleak$label: no leaked objects"
	else
		echo "$leaks" | sed 's/^/# /' | head -200
		echo "not ok - kmemleak$label: no leaked objects"
	fi
fi
exit 0
