#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The kernel splats of a guest's serial log, as make check judges them:
#
#   scripts/splats.sh boot|run LOG
#
# prints every line of LOG that reports a splat (warning, BUG, oops,
# KASAN, lockdep, hung task, RCU stall, UBSAN, panic, refcount or list
# corruption, Rust panic) with the 2 lines before and 25 after, either of
# the kernel's boot before it starts init (boot) or from init on (run),
# and nothing if there is none. An initramfs's /init, on Debian's kernel,
# counts as init. A missing LOG has no splats.
#
# Every line of the log is read: a reader that stops at the first match
# (grep -q) kills the writer with SIGPIPE, and under pipefail the pipeline
# then says "no match" about a log that has one.
set -euo pipefail

splat='WARNING:|BUG:|Oops|KASAN|possible circular locking|possible recursive locking|inconsistent lock state|hung_task|blocked for more than|RCU stall|rcu_sched self-detected|stall on CPU|UBSAN|kernel panic|Kernel panic|refcount_t:|list_add corruption|list_del corruption|general protection fault|rust_panic|panicked at'

part=${1:?usage: $0 boot|run LOG}
log=${2:?usage: $0 boot|run LOG}
[ -f "$log" ] || exit 0
init=$(grep -n -m1 -E 'Run /(sbin/rust-loop-init|init) as init process' "$log" | cut -d: -f1 || true)
case $part in
boot) [ -n "$init" ] || exit 0; head -n "$init" "$log" ;;
run) tail -n +"${init:-1}" "$log" ;;
*) echo "usage: $0 boot|run LOG" >&2; exit 2 ;;
esac | { grep -En -B2 -A25 "$splat" || true; }
