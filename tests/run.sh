#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The test runner inside the guest (scripts/check.sh boots the test kernel
# and calls it). It runs every test program once per driver, rust_loop.ko
# and the kernel's own loop.ko, and prints one TAP result line per test case
# ("ok - rust_loop: ctl_test: add_returns_index"); scripts/check.sh numbers
# them, checks the kernel log and prints the totals.
#
#   tests/run.sh [-k RUST_LOOP_KO] [-d "rust c"] [FILTER...]
#
# FILTER keeps the programs whose name contains one of the words.

set -u
top=$(cd "$(dirname "$0")/.." && pwd)
ko=$top/build/test/rust_loop.ko
drivers="rust c"
while getopts "k:d:" opt; do
	case $opt in
	k) ko=$OPTARG ;;
	d) drivers=$OPTARG ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))
filters="$*"

export RUST_LOOP_KO=$ko
export RL_SCRATCH=${RL_SCRATCH:-/tmp}
bin=$top/build/tests

# Test programs, in name order: the C kselftests built from tests/*_test.c
# into build/tests, their 32-bit builds NAME-m32 listed in
# build/tests/compat-tests (tests/Makefile), then the shell tests
# tests/*_test.sh. One entry per line: "name path".
programs() {
	local f
	for f in "$top"/tests/*_test.c; do
		[ -e "$f" ] || continue
		f=$(basename "$f" .c)
		echo "$f $bin/$f"
	done
	if [ -r "$bin/compat-tests" ]; then
		for f in $(cat "$bin/compat-tests"); do
			echo "$f-m32 $bin/$f-m32"
		done
	else
		echo "compat-tests $bin/compat-tests"
	fi
	for f in "$top"/tests/*_test.sh; do
		[ -e "$f" ] || continue
		echo "$(basename "$f" .sh) $f"
	done
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
	grep -q ' /scratch/mnt' /proc/mounts && umount -l /scratch/mnt* 2>/dev/null
	LOOP_DRIVER=$1 drv_unload
}

# mawk reads a pipe in big blocks unless told to be interactive.
awk_lines() {
	if awk -W version 2>&1 | grep -q mawk; then awk -W interactive "$@"; else awk "$@"; fi
}

# Turn one program's kselftest output into prefixed result lines.
filter() {
	local prefix=$1
	awk_lines -v p="$prefix" '
		/^(not )?ok / {
			not = ($1 == "not")
			sub(/^not /, "")
			sub(/^ok */, "")
			sub(/^[0-9]+ */, "")
			sub(/^- */, "")
			sub(/^global\./, "")
			printf "%s - %s%s\n", not ? "not ok" : "ok", p, $0
			fflush()
			results++
			next
		}
		/^TAP version|^1\.\.[0-9]+$/ { next }
		/^#/ { print; fflush(); next }
		{ print "# " $0; fflush() }
		END { exit results ? 0 : 3 }'
}

if [ -w /sys/kernel/debug/kmemleak ]; then
	echo clear >/sys/kernel/debug/kmemleak
fi

for drv in $drivers; do
	name=$(LOOP_DRIVER=$drv drv_name)
	for d in rust c; do cleanup "$d" >/dev/null; done
	while read -r prog path; do
		selected "$prog" || continue
		prefix="$name: $prog: "
		echo "# ---- $name: $prog"
		if [ ! -x "$path" ]; then
			echo "not ok - $prefix(program $path missing)"
			continue
		fi
		if ! LOOP_DRIVER=$drv drv_load; then
			echo "not ok - ${prefix}driver loads"
			continue
		fi
		# Line-buffered, so that a crash or a hang loses no output
		# (the 32-bit programs do it themselves, tests/common.h).
		buf="stdbuf -oL -eL"
		case $prog in *-m32) buf= ;; esac
		LOOP_DRIVER=$drv timeout -k 10 1800 $buf "$path" 2>&1 | filter "$prefix"
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
	done < <(programs)
done

if [ -w /sys/kernel/debug/kmemleak ] && [ -z "$filters" ]; then
	# Two scans: an object is reported only once it was seen unreferenced twice.
	echo scan >/sys/kernel/debug/kmemleak
	sleep 6
	echo scan >/sys/kernel/debug/kmemleak
	leaks=$(cat /sys/kernel/debug/kmemleak)
	if [ -z "$leaks" ]; then
		echo "ok - kmemleak: no leaked objects"
	else
		echo "$leaks" | sed 's/^/# /' | head -200
		echo "not ok - kmemleak: no leaked objects"
	fi
fi
exit 0
