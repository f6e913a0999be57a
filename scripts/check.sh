#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# `make check`: builds what is missing (chroot, kernels, rust_loop.ko, the C
# tests), runs tests/run.sh in QEMU guests and prints TAP: every test case
# against rust_loop.ko and against loop.ko, then checks that each guest ran
# to its end and that its kernel log holds no splat. The last line is
# "N passed, N failed, N skipped". Exits non-zero if anything failed.
#
# rust_loop, the subject, runs on the test kernel (KASAN, lockdep,
# kmemleak, Rust debug assertions). loop.ko, the oracle, runs the same
# programs on the release kernel (the same config without sanitizers), in a
# second guest booted side by side: it has nothing to prove about memory
# safety, and there it costs a fraction of the time.
#
# Tiers (README.md):
#   make check          both drivers, the whole suite (CI)
#   make check QUICK=1  rust_loop only, on the test kernel booted with
#                       kmemleak=off, each program's expensive repetitions
#                       cut (RL_QUICK=1 in the guest)
#   make check FULL=1   the whole suite plus the slow tier (RL_FULL=1: long
#                       soaks and fuzz runs)
#
# Environment: T="word ..." runs only the test programs whose name contains
# a word; DRIVERS="rust" or "c" runs one driver only; ORACLE_PROFILE
# (default release) is the kernel loop.ko runs on; KERNEL=debian runs both
# drivers on Debian's own kernel (scripts/build-debian.sh): rust_loop built
# against its headers, and its own loop.ko as the oracle; CHECK_TIMEOUT (seconds,
# default 3600, 28800 with FULL) bounds each guest; SLOW_CASE=N lists the
# test cases of N seconds or more (default 10).

. "$(dirname "$0")/lib.sh"

t0=$(date +%s)
subject=${KERNEL:-test}
# loop.ko runs on the release kernel beside the test kernel, and on the
# kernel itself otherwise (Debian's loop.ko is the oracle there).
case $subject in
test) oracle_profile=${ORACLE_PROFILE:-release} ;;
debian | kcsan) oracle_profile=${ORACLE_PROFILE:-$subject} ;;
*) rl_die "KERNEL=$subject: test (default), debian or kcsan" ;;
esac
ko=$RL_TOP/build/$subject/rust_loop.ko
tier=
[ -n "${QUICK:-}" ] && tier=quick
[ -n "${FULL:-}" ] && tier=full

# What each tier changes, in one place:
#
#   tier     drivers  tests built  guest env   timeout  kernel args   vCPUs  crash boots
#   quick    rust     native       RL_QUICK=1  1 h      kmemleak=off  1      no
#   default  rust c   all          -           1 h      -             2      yes
#   full     rust c   all          RL_FULL=1   8 h      -             2      yes
#
# The quick tier boots the test kernel with kmemleak off: kmemleak's
# bookkeeping of every allocation costs the debug kernel under TCG over a
# third of its speed (KASAN, lockdep and the splat check stay; leaks are
# make check's to find). Its guests have one vCPU each (QEMU_SMP
# overrides): with two guests on this 2-core machine a second vCPU buys no
# parallelism, and it costs TCG work between the vCPUs (not profiled;
# cross-vCPU TLB flushes are the likely part); make check keeps two: its
# races want two CPUs really running at once. The quick tier runs no
# 32-bit copies (it does not build them) and no crash boots (two boots
# per driver for one test). Timings: Documentation/pipeline.rst.
case $tier in
quick)
	drivers=${DRIVERS:-rust} tests_target=native env="RL_QUICK=1 " guest_timeout=3600
	kargs=kmemleak=off crash_boots=
	export QEMU_SMP=${QEMU_SMP:-1}
	;;
full)
	drivers=${DRIVERS:-rust c} tests_target=all env="RL_FULL=1 " guest_timeout=28800
	kargs= crash_boots=1
	;;
*)
	drivers=${DRIVERS:-rust c} tests_target=all env= guest_timeout=3600
	kargs= crash_boots=1
	;;
esac
want() { case " $drivers " in *" $1 "*) return 0 ;; esac; return 1; }

# mawk reads a pipe in big blocks unless told to be interactive.
awk_lines() {
	if awk -W version 2>&1 | grep -q mawk; then awk -W interactive "$@"; else awk "$@"; fi
}
"$RL_TOP/scripts/chroot.sh" >&2
rl_kernel "$subject" >/dev/null
if want c && [ "$oracle_profile" != "$subject" ]; then
	rl_kernel "$oracle_profile" >/dev/null
fi
# The module, the same module under the name loop (as make install builds
# it, for tests/install_test.sh) and the C tests, side by side: from a
# fresh clone, 11 s instead of 20.
"$RL_TOP/scripts/build-module.sh" "$subject" "$RL_TOP/build/$subject" >/dev/null &
mod=$!
"$RL_TOP/scripts/build-module.sh" "$subject" "$RL_TOP/build/$subject-loop" RUST_LOOP_NAME=loop >/dev/null &
modloop=$!
"$RL_TOP/scripts/build-tests.sh" "$RL_TOP/build/tests" "$tests_target" &
tests=$!
wait "$mod" || rl_die "building rust_loop.ko failed"
wait "$modloop" || rl_die "building rust_loop as loop.ko failed"
wait "$tests" || rl_die "building the tests failed"
rl_log "built in $(($(date +%s) - t0)) s; booting"

id=check-$(date +%Y%m%d-%H%M%S)-$$
# SLOW_CASE=N: name every test case of N seconds or more in a "# slow:"
# line (tests/run.sh; default 10).
[ -n "${SLOW_CASE:-}" ] && env+="RL_SLOW_CASE=$((SLOW_CASE)) "
# With both drivers, the loop.ko guest hands the step logs of the
# comparing tests (tests/compare.sh) to the rust_loop guest through the
# project directory, so the reference is not run again on the test kernel.
ref=
if want c && want rust; then
	ref=$RL_TOP/build/ref-$id
	mkdir -p "$ref"
	env+="RL_REF_DIR=$ref "
fi

# rust_loop's programs are shared by RUST_GUESTS (default 2) guests of the
# test kernel, which take them from one queue (tests/run.sh -q): a guest
# runs one program at a time, mostly on one vCPU (every exec is slow under
# KASAN and TCG), so two guests keep both of this machine's cores busy.
queue=$RL_TOP/build/queue-$id
rm -rf "$queue"
mkdir -p "$queue"
nrust=${RUST_GUESTS:-2}

# boot NAME PROFILE DRIVER: one guest running tests/run.sh for one driver;
# its raw output goes to stdout, its exit status to $RL_CACHE/runs/ID-NAME/rc.
boot() {
	local dir=$RL_CACHE/runs/$id-$1 rc=0
	mkdir -p "$dir"
	RL_RUN_DIR=$dir "$RL_TOP/scripts/qemu.sh" --profile "$2" --append "$kargs" \
		--timeout "${CHECK_TIMEOUT:-$guest_timeout}" -- \
		"${env}tests/run.sh -k $ko -d $3 -q $queue -l $1 ${T:-}" || rc=$?
	echo "$rc" >"$dir/rc"
	# The rust_loop guests stop waiting for references that will not come.
	[ "$3" = c ] && [ -n "$ref" ] && touch "$ref/.oracle-ended"
	return 0
}

# crash_pair DRIVER PROFILE: tests/crash.sh's two boots on one disk, the
# first writing and crashing, the second verifying; guests crash-DRIVER-write
# and crash-DRIVER-verify (their output and status as boot's).
crash_pair() {
	local w=$RL_CACHE/runs/$id-crash-$1-write v=$RL_CACHE/runs/$id-crash-$1-verify rc
	local nonce=$RANDOM$RANDOM start=$SECONDS name=rust_loop
	[ "$1" = c ] && name=loop
	mkdir -p "$w" "$v"
	rm -f "$w/disk.img"
	truncate -s 256M "$w/disk.img"
	for phase in write verify; do
		rc=0
		RL_RUN_DIR=$RL_CACHE/runs/$id-crash-$1-$phase "$RL_TOP/scripts/qemu.sh" \
			--profile "$2" --timeout 900 --disk "$w/disk.img" -- \
			"LOOP_DRIVER=$1 RUST_LOOP_KO=$ko tests/crash.sh $phase $nonce" \
			>"$RL_CACHE/runs/$id-crash-$1-$phase/out" 2>&1 || rc=$?
		echo "$rc" >"$RL_CACHE/runs/$id-crash-$1-$phase/rc"
		[ "$rc" = 0 ] || break
	done
	rm -f "$w/disk.img"
	echo "# time: $name crash_test $((SECONDS - start)) s" >>"$v/out"
}

# Number the result lines from $1 on; the totals go to the file $2.
number() {
	awk_lines -v n="$1" '
		/^(not )?ok / {
			not = ($1 == "not")
			line = $0
			sub(/^not /, "", line)
			sub(/^ok */, "", line)
			sub(/^[0-9]+ */, "", line)
			sub(/^- */, "", line)
			n++
			if (line ~ /# *SKIP/) skip++
			else if (not) fail++
			else pass++
			printf "%s %d - %s\n", not ? "not ok" : "ok", n, line
			fflush()
			next
		}
		{ print; fflush() }
		END { printf "%d %d %d\n", n, pass, fail > "/dev/stderr"; print skip + 0 > "/dev/stderr" }' \
		2>"$2"
}

echo "TAP version 13"
n=0 pass=0 fail=0 skip=0
# Every guest but the first rust_loop one runs in the background, its
# output in a file; the first one's output streams.
boots=() bg=()
want c && boots+=(c)
if want rust; then
	for ((i = 2; i <= nrust; i++)); do boots+=("rust$i"); done
fi
# tests/crash.sh's boots (crash_boots: not in the quick tier) follow the
# loop.ko guest, which ends first.
crash_selected() {
	local w
	[ -z "${T:-}" ] && return 0
	for w in $T; do
		case crash_test in *"$w"*) return 0 ;; esac
	done
	return 1
}
crash=()
if [ -n "$crash_boots" ] && crash_selected; then
	want c && crash+=(c)
	want rust && crash+=(rust)
fi
for b in "${boots[@]}"; do
	mkdir -p "$RL_CACHE/runs/$id-$b"
	if [ "$b" = c ]; then
		boot c "$oracle_profile" c >"$RL_CACHE/runs/$id-$b/out" 2>&1 &
	else
		boot "$b" "$subject" rust >"$RL_CACHE/runs/$id-$b/out" 2>&1 &
	fi
	bg+=($!)
done
if [ ${#crash[@]} -gt 0 ]; then
	{
		if [ "${boots[0]:-}" = c ]; then
			while [ ! -f "$RL_CACHE/runs/$id-c/rc" ]; do sleep 5; done
		fi
		for d in "${crash[@]}"; do
			p=$subject
			[ "$d" = c ] && p=$oracle_profile
			crash_pair "$d" "$p"
		done
	} &
	bg+=($!)
	for d in "${crash[@]}"; do boots+=("crash-$d-write" "crash-$d-verify"); done
fi
if want rust; then
	mkdir -p "$RL_CACHE/runs/$id-rust1"
	boot rust1 "$subject" rust 2>&1 | tee "$RL_CACHE/runs/$id-rust1/out" |
		number 0 "$RL_CACHE/runs/$id-counts"
	{ read -r n pass fail; read -r skip; } <"$RL_CACHE/runs/$id-counts"
	boots=(rust1 "${boots[@]}")
fi
[ ${#bg[@]} = 0 ] || wait "${bg[@]}"
for b in "${boots[@]}"; do
	[ "$b" = rust1 ] && continue
	number "$n" "$RL_CACHE/runs/$id-counts" <"$RL_CACHE/runs/$id-$b/out"
	{ read -r n p f; read -r s; } <"$RL_CACHE/runs/$id-counts"
	pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
done

result() { # result OK|FAIL DESCRIPTION
	n=$((n + 1))
	if [ "$1" = OK ]; then
		pass=$((pass + 1))
		echo "ok $n - $2"
	else
		fail=$((fail + 1))
		echo "not ok $n - $2"
	fi
}

ran=$n
for b in "${boots[@]}"; do
	dir=$RL_CACHE/runs/$id-$b
	log=$dir/serial.log
	guest=$(cat "$dir/rc" 2>/dev/null || echo 124)
	case $b in
	c) what="loop.ko guest ($oracle_profile kernel)" ;;
	crash-c-*) what="loop.ko ${b#crash-c-} guest of crash.sh ($oracle_profile kernel)" ;;
	crash-rust-*) what="rust_loop ${b#crash-rust-} guest of crash.sh ($subject kernel)" ;;
	*) what="rust_loop guest $b ($subject kernel)" ;;
	esac
	# tests/run.sh exits 0 whatever the tests said (they speak in TAP);
	# any other status is the pipeline's failure (124: crashed or timed
	# out; 125: the guest could not reach the project directory).
	if [ "$guest" = 124 ]; then
		result FAIL "$what ran to the end (it crashed or timed out; serial log $log)"
	elif [ "$guest" != 0 ]; then
		result FAIL "$what ran to the end (its command exited with $guest; serial log $log)"
	else
		result OK "$what ran to the end"
	fi
	# A splat while the kernel boots, before it starts init (and so
	# before any module or test), is the kernel's (one seen so far: an
	# early interrupt in identify_boot_cpu on a heavily loaded TCG host):
	# shown, not counted. Everything from init on counts.
	found=$("$RL_TOP/scripts/splats.sh" boot "$log")
	if [ -n "$found" ]; then
		echo "# $what: a kernel splat during boot, before init (not counted):"
		printf '%s\n' "$found" | sed -n '1,60s/^/# /p'
	fi
	found=$("$RL_TOP/scripts/splats.sh" run "$log")
	if [ -n "$found" ]; then
		printf '%s\n' "$found" | sed -n '1,120s/^/# /p'
		result FAIL "$what: kernel log has no splat (serial log $log)"
	else
		result OK "$what: kernel log has no splat"
	fi
done
if [ "$ran" = 0 ]; then
	result FAIL "the suite printed test results"
fi

# Where the time went: seconds and processes (forks) per program and
# driver ("# time:" lines of tests/run.sh).
echo "# seconds and processes per program (rust_loop on the $subject kernel, loop.ko on the $oracle_profile kernel):"
cat "$RL_CACHE/runs/$id"-*/out 2>/dev/null | tr -d '\r' | grep '^# time: ' |
	awk '{ t[$4] += 0; v[$4, $3] = $5; f[$4, $3] = $7; tot[$3] += $5; ftot[$3] += $7 }
		END {
			fmt = "#   %-24s %10s %10s %10s %10s\n"
			printf fmt, "program", "rust_loop", "processes", "loop", "processes"
			for (p in t) printf fmt, p, v[p, "rust_loop"], f[p, "rust_loop"], v[p, "loop"], f[p, "loop"] | "sort"
			close("sort")
			printf fmt, "total", tot["rust_loop"] + 0, ftot["rust_loop"] + 0, tot["loop"] + 0, ftot["loop"] + 0
		}'

echo "1..$n"
[ "$fail" = 0 ] || rl_log "serial logs: $RL_CACHE/runs/$id-*/serial.log"
rm -f "$RL_CACHE/runs/$id-counts"
[ -n "$ref" ] && rm -rf "$ref"
rm -rf "$queue"
rl_log "make check took $(($(date +%s) - t0)) s"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" = 0 ]
