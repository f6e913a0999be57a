#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# No loop work runs on an isolated CPU (issue 23, item 7). loop.c queues
# its work on an unbound workqueue, which keeps off the CPUs that
# isolcpus=, nohz_full= or an isolated cpuset partition take away from
# the kernel (wq_unbound_cpumask); a per-CPU workqueue runs work where it
# was queued, so I/O submitted on an isolated CPU would bring kernel work
# onto it.
#
# CPU 1 becomes an isolated cpuset partition (cgroup v2, cpuset.cpus 1,
# cpuset.cpus.partition isolated), the housekeeping the kernel changes at
# run time as isolcpus= sets it at boot. A process of that partition,
# bound to CPU 1, reads and then writes 4 MiB with O_DIRECT through a
# loop device with direct I/O over a file in /dev/shm, buffered too. The
# workqueue trace events (workqueue_queue_work, workqueue_execute_start)
# show every work item queued on the device's workqueue ("loopN") and the
# CPU that ran it: some ran, and none on CPU 1.
#
# A third case submits on the housekeeping CPU 0 instead: random writes
# at depth 32 (fio, io_uring) beside a busy loop on CPU 0, so that the
# submitter is runnable when the worker starts and rust_loop queues the
# list on the next CPU (sys/placement.rs), which must be a housekeeping
# one: none runs on CPU 1, and for rust_loop the device's
# worker_elsewhere counter shows that the list was sent elsewhere.
#
# Needs 2 CPUs, cgroup v2 with the cpuset controller and the workqueue
# trace events (the test kernel and Debian's; the release kernel has no
# tracing, so loop.ko is compared on Debian's); the third case needs fio;
# skipped otherwise.

. "$(dirname "$0")/lib.sh"

cg=/sys/fs/cgroup
grp=$cg/rl_isolation_test
tr=/sys/kernel/tracing
img=/dev/shm/rl-isolation.img
dev=
cases=("direct I/O submitted on an isolated CPU: no loop work runs there"
	"buffered I/O submitted on an isolated CPU: no loop work runs there"
	"I/O at depth beside a busy task on a housekeeping CPU: no loop work runs on the isolated one")
hog=

cleanup() {
	[ -n "$hog" ] && kill "$hog" 2>/dev/null && wait "$hog" 2>/dev/null
	if [ -d "$tr/events/workqueue" ]; then
		echo 0 >"$tr/events/workqueue/workqueue_queue_work/enable"
		echo 0 >"$tr/events/workqueue/workqueue_execute_start/enable"
		echo >"$tr/trace"
	fi
	[ -n "$dev" ] && losetup -d "$dev" 2>/dev/null
	if [ -d "$grp" ]; then
		echo member >"$grp/cpuset.cpus.partition" 2>/dev/null
		rmdir "$grp" 2>/dev/null
	fi
	rm -f "$img"
}
trap cleanup EXIT

skip_all() {
	local c
	for c in "${cases[@]}"; do t_skip "$c" "$1"; done
	t_done
}

# setup: the isolated partition on CPU 1 and the trace events, or why not.
setup() {
	[ "$(nproc --all)" -ge 2 ] || { echo "fewer than 2 CPUs"; return 1; }
	[ -d "$tr/events/workqueue" ] || mount -t tracefs nodev "$tr" 2>/dev/null
	[ -d "$tr/events/workqueue" ] || { echo "no workqueue trace events (no tracing in this kernel)"; return 1; }
	[ -e "$cg/cgroup.controllers" ] || mount -t cgroup2 none "$cg" 2>/dev/null
	grep -qw cpuset "$cg/cgroup.controllers" 2>/dev/null ||
		{ echo "no cgroup v2 cpuset controller (CONFIG_CPUSETS)"; return 1; }
	echo +cpuset >"$cg/cgroup.subtree_control" || { echo "cannot enable cpuset"; return 1; }
	rmdir "$grp" 2>/dev/null
	mkdir "$grp" && echo 1 >"$grp/cpuset.cpus" && echo isolated >"$grp/cpuset.cpus.partition" ||
		{ echo "cannot make CPU 1 an isolated partition"; return 1; }
	[ "$(cat "$grp/cpuset.cpus.partition")" = isolated ] ||
		{ echo "partition is '$(cat "$grp/cpuset.cpus.partition")', not isolated"; return 1; }
}
why=$(setup) || skip_all "$why"

truncate -s 64M "$img"

# on_isolated_cpu CMD...: CMD in the isolated partition, bound to CPU 1.
on_isolated_cpu() {
	bash -c 'echo $$ >"$1/cgroup.procs" && shift && exec taskset -c 1 "$@"' x "$grp" "$@"
}

# on_isolated_dd DEV: reads, then writes 4 MiB of DEV with O_DIRECT from
# CPU 1.
on_isolated_dd() {
	on_isolated_cpu dd if="$1" of=/dev/null bs=4k count=1024 iflag=direct status=none &&
		on_isolated_cpu dd if=/dev/zero of="$1" bs=4k count=1024 oflag=direct status=none ||
		t_diag "dd on CPU 1 failed"
}

# depth_beside_hog DEV: random writes at depth 32 to DEV from CPU 0, a
# busy loop on CPU 0 beside them; fails if, for rust_loop, DEV's
# worker_elsewhere counter did not grow (the case did not test the list
# going elsewhere).
depth_beside_hog() {
	local before after
	before=$(worker_elsewhere "$1")
	taskset -c 0 bash -c 'while :; do :; done' &
	hog=$!
	taskset -c 0 fio --name=isolation --filename="$1" --direct=1 --ioengine=io_uring \
		--iodepth=32 --rw=randwrite --bs=4k --size=16M --output=/dev/null >/dev/null 2>&1 ||
		t_diag "fio on CPU 0 failed"
	kill "$hog" && wait "$hog" 2>/dev/null
	hog=
	after=$(worker_elsewhere "$1")
	if [ "${LOOP_DRIVER:-rust}" != c ] && [ "$after" -le "$before" ]; then
		t_diag "worker_elsewhere $before before, $after after: the list never left CPU 0"
		return 1
	fi
}

# case_io DESC DIO IO: I/O through a device with --direct-io=DIO by the
# function IO (given the device), which succeeds; every execution of a
# work item queued on the device's workqueue ran on another CPU than 1.
case_io() {
	local desc=$1 dio=$2 io=$3 name trace ran on1 io_ok=1
	dev=$(losetup --direct-io="$dio" -f --show "$img") || { t_fail "$desc"; return; }
	name=${dev#/dev/}
	echo >"$tr/trace"
	echo 1 >"$tr/events/workqueue/workqueue_queue_work/enable"
	echo 1 >"$tr/events/workqueue/workqueue_execute_start/enable"
	"$io" "$dev" || io_ok=0
	echo 0 >"$tr/events/workqueue/workqueue_queue_work/enable"
	echo 0 >"$tr/events/workqueue/workqueue_execute_start/enable"
	trace=$(cat "$tr/trace")
	losetup -d "$dev"
	dev=
	# "task-pid [CPU] flags time: workqueue_queue_work: work struct=P ...
	# workqueue=loopN ..." then "... [CPU] ...: workqueue_execute_start:
	# work struct P: function F".
	read -r ran on1 < <(printf '%s\n' "$trace" | awk -v wq="workqueue=$name" '
		/workqueue_queue_work:/ && index($0, wq " ") {
			for (i = 1; i <= NF; i++) if ($i ~ /^struct=/) w[substr($i, 8)] = 1
		}
		/workqueue_execute_start:/ {
			for (i = 1; i <= NF; i++) if ($i == "struct") p = $(i + 1)
			sub(/:$/, "", p)
			if (!(p in w)) next
			ran++
			if (match($0, /\[[0-9]+\]/) && substr($0, RSTART + 1, RLENGTH - 2) + 0 == 1) on1++
		}
		END { print ran + 0, on1 + 0 }')
	if [ "$ran" -gt 0 ] && [ "$on1" = 0 ] && [ "$io_ok" = 1 ]; then
		t_ok "$desc"
	else
		t_diag "$ran executions of $name's work items, $on1 of them on the isolated CPU 1"
		t_fail "$desc"
	fi
}

case_io "${cases[0]}" on on_isolated_dd
case_io "${cases[1]}" off on_isolated_dd
if command -v fio >/dev/null; then
	case_io "${cases[2]}" on depth_beside_hog
else
	t_skip "${cases[2]}" "no fio"
fi
t_done
