#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The Makefile's own behaviour that needs no driver: `make run CMD='...'`
# hands the command to the guest exactly as typed, $ and quotes and all
# (issue 13). It reads what make would run (make -n) and parses the
# scripts/qemu.sh line as the recipe's shell would; nothing is booted.
# And `make check`'s splat check (scripts/splats.sh) finds a splat early
# in a serial log far longer than a pipe's buffer, counts one after init
# and not one before it. Runs once, with LOOP_DRIVER=rust; for c its
# cases are skipped.

. "$(dirname "$0")/lib.sh"

# shellcheck disable=SC2016 # the $ are the point
cmds=(
	'echo $HOME'
	'echo "$(id -u)" $((1 + 2)) `uname -r`'
	"echo 'single \$quoted' \"double \$HOME\" it\\'s | tr a-z A-Z"
	'x=1; for i in a b; do echo "$i$x"; done | sort -r > /dev/null && echo ${x:-none} # comment'
	"printf '%s\\n' \"it's\" '\"' '\\' | wc -l"
	''
)
names=(
	'$VAR'
	'$(...), $((...)) and backquotes'
	'single and double quotes, an apostrophe, a pipe'
	'a loop, redirections, ${...} and a comment'
	'printf escapes, lone quotes and a backslash'
	'no CMD (an interactive shell)'
)

# run_arg CMD: the last argument make run passes to scripts/qemu.sh.
run_arg() {
	local out line
	out=$(make -s -n -C "$T_TOP" run CMD="$1") || return 1
	line=${out#*scripts/qemu.sh }
	[ "$line" != "$out" ] || return 1
	eval "set -- $line"
	printf '%s' "${@: -1}"
}

for i in "${!cmds[@]}"; do
	desc="make run CMD passes the command unchanged: ${names[i]}"
	if [ "${LOOP_DRIVER:-rust}" = c ]; then
		t_skip "$desc" "tests the Makefile, not a driver; runs with rust_loop"
		continue
	fi
	got=$(run_arg "${cmds[i]}")
	if [ "$got" = "${cmds[i]}" ]; then
		t_ok "$desc"
	else
		t_diag "sent: ${cmds[i]}" "got:  $got"
		t_fail "$desc"
	fi
done

# splat_case DESC PART WANT LINES...: a serial log of LINES with 20 000
# filler lines after them; scripts/splats.sh PART finds a splat (WANT=1)
# or none (WANT=0).
splat_case() {
	local desc=$1 part=$2 want=$3 log=$T_SCRATCH/make-test-serial.log got
	shift 3
	if [ "${LOOP_DRIVER:-rust}" = c ]; then
		t_skip "$desc" "tests make check, not a driver; runs with rust_loop"
		return
	fi
	{ printf '%s\n' "$@"; seq -f "[ %g.000000] filler" 20000; } >"$log"
	got=$("$T_TOP/scripts/splats.sh" "$part" "$log")
	rm -f "$log"
	if [ "$([ -n "$got" ] && echo 1 || echo 0)" = "$want" ]; then
		t_ok "$desc"
	else
		t_diag "scripts/splats.sh $part printed:" "${got:-(nothing)}"
		t_fail "$desc"
	fi
}
init='[    1.000000] Run /sbin/rust-loop-init as init process'
warn='[    2.000000] WARNING: CPU: 0 PID: 1 at drivers/block/x.c:1 f+0x1/0x2'
splat_case "make check finds a splat at the start of a long serial log" run 1 "$init" "$warn"
splat_case "make check counts no splat in a long log that has none" run 0 "$init"
splat_case "make check does not count a splat before init, and shows it" boot 1 "$warn" "$init"
splat_case "make check's splat before init is not one after it" run 0 "$warn" "$init"
t_done
