# SPDX-License-Identifier: GPL-2.0
#
# Step tests compared with loop.ko (tests/losetup_test.sh,
# tests/mount_test.sh): a test defines its steps as functions s_NAME and
# lists them in `steps`, each step runs real tools through `run`/`want_*`,
# which check explicit expectations and record every command, its output,
# its exit status and the sysfs values read in the step's log. With
# LOOP_DRIVER=rust, `compare_main` first runs the same steps on loop.ko in
# the same guest (rust_loop unloaded, `modprobe loop`, steps, `rmmod loop`,
# rust_loop loaded again) and then diffs each step's log on rust_loop
# against loop.ko's: device names, MAJ:MIN, sizes, sysfs values and error
# messages must all be identical; only what LOG_SUBST names (values that
# differ between guests, such as inode numbers) is written symbolically.
#
# The including test sets $work (an empty directory of its own) and
# STEP_TIMEOUT, defines the steps and optionally step_cleanup (run after
# every step), then calls compare_main. Sourced after tests/lib.sh.

# `steps` entries are "NAME|DESCRIPTION" or "NAME|DESCRIPTION|noref" for a
# step left out of the loop.ko reference run (its outcome is racy by
# nature, so it has explicit expectations only).

step_cleanup() { :; }
ref_errs_all=()

# ---------------------------------------------------------------- watchdog
#
# A step that hangs in the driver is killed by a watchdog after
# STEP_TIMEOUT seconds and fails, instead of hanging the whole run. A
# per-command `timeout` would cost an extra exec per command, and every exec
# takes about half a second on the KASAN kernel under TCG.

wd_pid=
# wd_arm SECONDS: after SECONDS, SIGKILL every descendant of this shell
# (but the watchdog itself) and note it in $work/watchdog.
wd_arm() {
	local main=$$
	(
		read -r -t "$1" -u "$wd_fd" && exit 0
		echo "watchdog fired after $1 s" >>"$work/watchdog"
		kill_tree "$main" "$BASHPID"
	) &
	wd_pid=$!
}

wd_disarm() {
	[ -n "$wd_pid" ] || return 0
	kill "$wd_pid" 2>/dev/null
	wait "$wd_pid" 2>/dev/null
	wd_pid=
}

# kill_tree PID SPARE: SIGKILL PID's descendants except SPARE.
kill_tree() {
	local c
	for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
		[ "$c" = "$2" ] && continue
		kill_tree "$c" "$2"
		kill -KILL "$c" 2>/dev/null
	done
}

# ---------------------------------------------------------- expectations

# LOG_SUBST maps a value that differs between guests to a name written in
# the logs in its place: the loop.ko reference runs in another guest, whose
# scratch file system gives the same backing files other inode numbers. The
# test itself still checks the real value with an explicit expectation.
declare -A LOG_SUBST=()

# run CMD...: run a command, append it, its output and its exit status to
# the step's log (with LOG_SUBST applied); sets $out (stderr, then stdout: a
# fixed order, unlike 2>&1) and $rc.
run() {
	local lines text k log_out
	out=$("$@" 2>"$work/stderr")
	rc=$?
	mapfile -t lines <"$work/stderr"
	if [ ${#lines[@]} -gt 0 ]; then
		printf -v text '%s\n' "${lines[@]}"
		out=${text%$'\n'}${out:+$'\n'}$out
	fi
	log_out=$out
	for k in "${!LOG_SUBST[@]}"; do
		log_out=${log_out//"$k"/"${LOG_SUBST[$k]}"}
	done
	printf '$ %s\n%s%src=%s\n' "$*" "$log_out" "${out:+$'\n'}" "$rc" >>"$log"
	return $rc
}

# want LABEL EXPECTED ACTUAL: one expectation of the step.
want() {
	[ "$2" = "$3" ] && return 0
	errs+=("$1: want '$2', got '$3'")
	return 1
}

# want_run EXPECTED_RC EXPECTED_OUTPUT CMD...: run CMD, check both.
want_run() {
	local xrc=$1 xout=$2
	shift 2
	run "$@"
	want "\`$*\` exit status" "$xrc" "$rc"
	want "\`$*\` output" "$xout" "$out"
}

# want_rc EXPECTED_RC CMD...: run CMD, check only its exit status (its
# output is shown on failure, not recorded).
want_rc() {
	local xrc=$1 o r
	shift
	o=$("$@" 2>&1)
	r=$?
	printf '$ %s\nrc=%s\n' "$*" "$r" >>"$log"
	want "\`$*\` exit status" "$xrc" "$r" || errs+=("$o")
}

# want_sys PATH EXPECTED: a sysfs (or any) file's content, recorded.
want_sys() {
	sysread "$1"
	echo "$1: $v" >>"$log"
	want "$1" "$2" "$v"
}

# want_absent PATH...: none of the paths exists.
want_absent() {
	local p
	for p in "$@"; do
		want_sys "$p" "<absent>"
	done
}

# want_node DEV MAJ:MIN: DEV is a block device node with that number.
want_node() {
	local n="<not a block device>"
	[ -b "$1" ] && n=$(stat -c '%Hr:%Lr' "$1")
	echo "$1: node $n" >>"$log"
	want "$1 node" "$2" "$n"
}

# want_list DEV COLUMNS EXPECTED: `losetup -l -n --raw -O COLUMNS DEV`.
want_list() {
	want_run 0 "$3" losetup -l -n --raw -O "$2" "$1"
}

# want_data FILE SKIP_BYTES REFERENCE: FILE (a device or the backing file)
# holds the content of REFERENCE at SKIP_BYTES.
want_data() {
	local n r=match
	n=$(stat -c %s "$3")
	cmp -s -n "$n" -i "$2:0" "$1" "$3" || r=differs
	echo "$1 @$2 against ${3##*/}: $r" >>"$log"
	want "$1 content at $2 is ${3##*/}" match "$r"
}

# ls_names DIR: the names in DIR, space-separated, sorted.
ls_names() {
	local f names=()
	for f in "$1"/*; do
		[ -e "$f" ] && names+=("${f##*/}")
	done
	echo "${names[*]}"
}

# ----------------------------------------------------------------- runner

# run_steps PHASE: the steps on the driver loaded now (freshly, with
# default parameters). PHASE "ref" (loop.ko, for the comparison) runs the
# steps not marked "noref" and only records; "test" runs them all and
# prints TAP.
run_steps() {
	local phase=$1 s name desc rest t0 ref_errs=()
	mkdir -p "$work/$phase"
	for s in "${steps[@]}"; do
		name=${s%%|*}
		rest=${s#*|}
		desc=${rest%%|*}
		[ "$phase" = ref ] && [ "${rest##*|}" = noref ] && continue
		log=$work/$phase/$name.log
		: >"$log"
		errs=()
		want "devices bound before the step" "" "$(bound)"
		t0=$SECONDS
		rm -f "$work/watchdog"
		wd_arm "$STEP_TIMEOUT"
		"s_$name"
		wd_disarm
		[ -e "$work/watchdog" ] && errs+=("hung: killed by the watchdog after $STEP_TIMEOUT s")
		# Leave nothing behind for the next step, whatever happened.
		step_cleanup
		[ -z "$(bound)" ] || timeout -k 5 60 losetup -D >/dev/null 2>&1
		t_diag "$phase $name: $((SECONDS - t0)) s"
		if [ "$phase" = ref ]; then
			[ ${#errs[@]} = 0 ] || ref_errs+=("$name:" "${errs[@]}")
			continue
		fi
		if [ ${#errs[@]} = 0 ]; then
			t_ok "$name: $desc"
		else
			t_diag "${errs[@]}"
			t_fail "$name: $desc"
			ref_errs_all+=("$name")
		fi
		if [ "$LOOP_DRIVER" = rust ] && [ -f "$work/ref/$name.log" ]; then
			if diff -u "$work/ref/$name.log" "$log" >"$work/diff" 2>&1; then
				t_ok "$name: same commands, outputs and sysfs values as loop.ko"
			else
				t_diag "loop.ko (---) against rust_loop (+++):" "$(head -80 "$work/diff")"
				t_fail "$name: same commands, outputs and sysfs values as loop.ko"
			fi
		fi
	done
	if [ "$phase" = ref ]; then
		if [ ${#ref_errs[@]} = 0 ]; then
			t_ok "loop.ko, run in this guest for the comparison, passes every check"
		else
			t_diag "${ref_errs[@]}"
			t_fail "loop.ko, run in this guest for the comparison, passes every check"
		fi
	fi
}

# The loop.ko reference of a program: the step logs of its loop.ko run.
# With RL_REF_DIR set (scripts/check.sh sets it to one directory of the
# project, shared by its two guests), the loop.ko guest publishes its logs
# there and the rust_loop guest takes them from there, waiting for them
# at most RL_REF_WAIT seconds (default 900), or until the loop.ko guest has
# ended (.oracle-ended, from scripts/check.sh), before running the
# reference itself. Without it, the reference runs in this guest before the steps.
ref_name=$(basename "$0" .sh)

# ref_publish: after the steps on loop.ko, its logs of the steps that have
# a reference, then a marker.
ref_publish() {
	local s name rest dir=${RL_REF_DIR:-}/$ref_name
	[ -n "${RL_REF_DIR:-}" ] && [ "$LOOP_DRIVER" = c ] || return 0
	rm -rf "$dir"
	mkdir -p "$dir" || return 0
	for s in "${steps[@]}"; do
		name=${s%%|*}
		rest=${s#*|}
		[ "${rest##*|}" = noref ] && continue
		cp "$work/test/$name.log" "$dir/" 2>/dev/null
	done
	[ ${#ref_errs_all[@]} = 0 ] && touch "$dir/.passed"
	touch "$dir/.done"
}

# ref_fetch: the published logs into $work/ref, if they come in time and
# loop.ko passed every check there.
ref_fetch() {
	local dir=${RL_REF_DIR:-}/$ref_name i wait=${RL_REF_WAIT:-900}
	[ -n "${RL_REF_DIR:-}" ] || return 1
	for ((i = 0; i < wait; i++)); do
		[ -e "$dir/.done" ] && break
		# The loop.ko guest ended without publishing it (crashed).
		[ -e "$RL_REF_DIR/.oracle-ended" ] && [ ! -e "$dir/.done" ] && break
		sleep 1
	done
	if [ ! -e "$dir/.done" ]; then
		t_diag "no loop.ko reference in $dir after $i s: running it here"
		return 1
	fi
	mkdir -p "$work/ref" && cp "$dir"/*.log "$work/ref/" 2>/dev/null
	if [ -e "$dir/.passed" ]; then
		t_ok "loop.ko, run in the oracle guest for the comparison, passes every check"
	else
		t_fail "loop.ko, run in the oracle guest for the comparison, passes every check"
	fi
	t_diag "loop.ko reference taken from $dir"
	return 0
}

# compare_main: the watchdog's pipe, the loop.ko reference (for rust_loop;
# none with RL_QUICK) and the steps on the driver under test; exits with
# the TAP status.
compare_main() {
	local t0=$SECONDS
	if ! mkfifo "$work/wd" || ! exec {wd_fd}<>"$work/wd"; then
		t_fail "watchdog pipe set up"
		t_done
	fi
	if [ "$LOOP_DRIVER" = rust ] && [ -z "${RL_QUICK:-}" ] && ! ref_fetch; then
		if LOOP_DRIVER=rust drv_unload && modprobe loop; then
			run_steps ref
			LOOP_DRIVER=c drv_unload || t_fail "loop.ko unloads after the reference run"
			drv_load || t_fail "rust_loop loads again after the loop.ko reference run"
		else
			t_fail "rust_loop unloaded and loop.ko loaded for the reference run"
		fi
	fi
	run_steps test
	ref_publish
	t_diag "total $((SECONDS - t0)) s"
	t_done
}
