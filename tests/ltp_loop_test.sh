#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The Linux Test Project's loop device tests, ioctl_loop01 to ioctl_loop07
# and ioctl09, as LTP runs them on its own helpers (the device from
# LOOP_CTL_GET_FREE, LOOP_SET_FD plus an old LOOP_SET_STATUS to attach,
# LOOP_CLR_FD until ENXIO to detach): tests/ltp_loop_helper.py, one TAP
# line per LTP test. LTP itself is not in this guest (no Debian package);
# its partitioning by parted is sfdisk here. The files lie on the ext4
# scratch disk (ioctl_loop05 skips tmpfs). Every test also checks the
# kernel log for splats.

. "$(dirname "$0")/lib.sh"

work=$T_SCRATCH/ltp-loop
cleanup() {
	timeout -k 5 60 losetup -D 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work"
kmsg_mark=$(dmesg | wc -l)
n=0

while IFS= read -r line; do
	case $line in
	"not ok - "*)
		n=$((n + 1))
		t_fail "${line#not ok - }"
		;;
	"ok - "*)
		n=$((n + 1))
		if kmsg_clean; then
			echo "$line"
		else
			t_fail "${line#ok - } (kernel log)"
		fi
		;;
	*) echo "$line" ;;
	esac
done < <(timeout -k 5 600 python3 "$T_TOP/tests/ltp_loop_helper.py" "$work" 2>&1)
# Eight tests, eight results (a helper that died says so here).
[ "$n" = 8 ] || t_fail "the LTP tests ran to their end: $n of 8 results"
[ "$(bound)" = "" ] || t_fail "every device detached after the LTP tests: bound: $(bound)"
t_done
