#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The Makefile's own behaviour that needs no driver: `make run CMD='...'`
# hands the command to the guest exactly as typed, $ and quotes and all
# (issue 13). It reads what make would run (make -n) and parses the
# scripts/qemu.sh line as the recipe's shell would; nothing is booted.
# Runs once, with LOOP_DRIVER=rust; for c its cases are skipped.

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
t_done
