#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# `make check`: builds what is missing (chroot, test kernel, rust_loop.ko
# for it, the C tests), boots the test kernel (KASAN, lockdep, kmemleak,
# Rust debug assertions) in QEMU, runs tests/run.sh there and prints TAP:
# every test case against rust_loop.ko and against loop.ko, then a last test
# that the guest's kernel log holds no splat. The last line is
# "N passed, N failed, N skipped". Exits non-zero if anything failed.
#
# Environment: T="word ..." runs only the test programs whose name contains
# a word; DRIVERS="rust" or "c" runs one driver only; CHECK_TIMEOUT (seconds,
# default 4800) bounds the guest.

. "$(dirname "$0")/lib.sh"

t0=$(date +%s)

# mawk reads a pipe in big blocks unless told to be interactive.
awk_lines() {
	if awk -W version 2>&1 | grep -q mawk; then awk -W interactive "$@"; else awk "$@"; fi
}
"$RL_TOP/scripts/chroot.sh" >&2
"$RL_TOP/scripts/build-kernel.sh" test >/dev/null
"$RL_TOP/scripts/build-module.sh" test "$RL_TOP/build/test" >/dev/null ||
	rl_die "building rust_loop.ko failed"
"$RL_TOP/scripts/build-tests.sh" "$RL_TOP/build/tests" ||
	rl_die "building the tests failed"
rl_log "built in $(($(date +%s) - t0)) s; booting the test kernel"

export RL_RUN_DIR=$RL_CACHE/runs/check-$(date +%Y%m%d-%H%M%S)-$$
mkdir -p "$RL_RUN_DIR"
log=$RL_RUN_DIR/serial.log
set +e
"$RL_TOP/scripts/qemu.sh" --profile test --timeout "${CHECK_TIMEOUT:-4800}" -- \
	"tests/run.sh -k $RL_TOP/build/test/rust_loop.ko ${DRIVERS:+-d \"$DRIVERS\"} ${T:-}" |
	awk_lines '
		BEGIN { print "TAP version 13"; n = 0 }
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
		END {
			printf "%d %d %d %d\n", n, pass, fail, skip > "/dev/stderr"
		}' 2>"$RL_RUN_DIR/counts"
guest=${PIPESTATUS[0]}
set -e
read -r n pass fail skip <"$RL_RUN_DIR/counts"

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

# The guest itself must have finished: a crash or a hang is a failure even
# when every test printed so far passed.
# tests/run.sh exits 0 whatever the tests said (they speak in TAP); any
# other status is the pipeline's failure (125: the guest could not reach
# the project directory), and a run without any result is one too.
ran=$n
if [ "$guest" = 124 ]; then
	result FAIL "guest ran to the end (it crashed or timed out; serial log $log)"
elif [ "$guest" != 0 ]; then
	result FAIL "guest ran to the end (its command exited with $guest; serial log $log)"
else
	result OK "guest ran to the end"
fi
if [ "$ran" = 0 ]; then
	result FAIL "the suite printed test results"
fi

splat='WARNING:|BUG:|Oops|KASAN|possible circular locking|possible recursive locking|inconsistent lock state|hung_task|blocked for more than|RCU stall|rcu_sched self-detected|stall on CPU|UBSAN|kernel panic|Kernel panic|refcount_t:|list_add corruption|list_del corruption|general protection fault|rust_panic|panicked at'
if grep -Eq "$splat" "$log"; then
	grep -En -B2 -A25 "$splat" "$log" | head -120 | sed 's/^/# /'
	result FAIL "kernel log has no splat (serial log $log)"
else
	result OK "kernel log has no splat"
fi

echo "1..$n"
[ "$fail" = 0 ] || rl_log "serial log: $log"
rl_log "make check took $(($(date +%s) - t0)) s"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" = 0 ]
