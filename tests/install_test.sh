#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# `make install` and `make uninstall` as a user runs them (issue 13): the
# module built under the name loop (build/test-loop/loop.ko, next to the
# rust_loop.ko under test; scripts/check.sh builds both) is installed with
# `make install KO=...` into a writable copy of the guest's module tree
# (its index files and loop.ko), bind-mounted over the read-only /lib/modules for the duration, so that
# modprobe and the kernel's own request_module() see it. Then, with no loop
# driver loaded: modprobe loop with an `options loop` line in modprobe.d,
# modprobe -r loop, auto-loading by opening /dev/loop-control and a
# /dev/loopN node, and after `make uninstall`, loop.ko again.
#
# It installs rust_loop, so with LOOP_DRIVER=c every case is skipped. It
# leaves the guest as it found it: the module tree and modprobe.d as they
# were, and no loop driver loaded (tests/run.sh loads rust_loop.ko for the
# next program, and unloads whatever is loaded after this one).
#
# Every exec costs about a second on the debug kernel under TCG when the
# host is busy, so the checks read files with shell builtins.

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/install_lib.sh"

under_test=${RUST_LOOP_KO:-$T_TOP/build/test/rust_loop.ko}
ko=${RUST_LOOP_INSTALL_KO:-${under_test%/*}-loop/loop.ko}
conf=/run/modprobe.d/rust-loop-install-test.conf
work=$T_SCRATCH/install-test
cases=(
	"make install puts loop.ko in updates/ and depmod picks it"
	"modprobe -n -v loop resolves to it, with the options loop line"
	"modprobe loop loads rust_loop as loop (lsmod, modinfo)"
	"an options loop line in modprobe.d reaches /sys/module/loop/parameters"
	"modprobe -r loop unloads it"
	"opening /dev/loop-control with no loop driver loaded auto-loads it"
	"opening a /dev/loopN node with no loop driver loaded auto-loads it"
	"make uninstall: modprobe loop loads the kernel's loop.ko again"
	"the guest is left as found: module tree, modprobe.d, nothing loaded"
)

if [ "${LOOP_DRIVER:-rust}" = c ]; then
	for c in "${cases[@]}"; do
		t_skip "$c" "installs rust_loop in place of loop.ko; runs against rust_loop"
	done
	t_done
fi

bound= made_ctl=
restore() {
	unload_loop
	[ -n "$bound" ] && umount /lib/modules
	rm -rf "$work" "$conf" ${made_ctl:+/dev/loop-control}
	bound= made_ctl=
}

if [ ! -f "$ko" ]; then
	t_diag "no $ko: scripts/check.sh builds it (scripts/build-module.sh test build/test-loop RUST_LOOP_NAME=loop)"
	for c in "${cases[@]}"; do t_fail "$c"; done
	t_done
fi

# The setting: no loop driver loaded (tests/run.sh has just loaded the
# rust_loop.ko under test, with nothing bound), a writable module tree.
unload_all
# Of the module tree, what modprobe and depmod read for loop: the index
# files and loop.ko (the 9p copy of the whole tree took 40 s in a busy
# guest; depmod then indexes the copy's modules only).
rm -rf "$work"
mkdir -p "$work/modules/$rel/kernel/drivers/block" /run/modprobe.d
cp -a "$tree"/modules.* "$work/modules/$rel/"
cp -a "$tree/$kloop" "$work/modules/$rel/kernel/drivers/block/"
trap restore EXIT
mount --bind "$work/modules" /lib/modules && bound=1

# 1. make install, into the running kernel's (now writable) module tree.
out=$(make -s -C "$T_TOP" install KO="$ko" 2>&1)
st=$?
t_diag "make install: $out"
[ $st = 0 ] && [ -f "$tree/updates/loop.ko" ] &&
	has_line "$tree/modules.dep" "updates/loop.ko:" &&
	! has_line "$tree/modules.dep" "$kloop:" &&
	has_line "$tree/modules.alias" "alias char-major-10-237 loop" &&
	has_line "$tree/modules.devname" "loop loop-control c10:237"
t_check "${cases[0]}" test $? = 0

# 2, 3, 4. By name, with options as users write them for loop.ko (3
# devices rather than 8 also make every load below cheaper).
echo "options loop $opts" >"$conf"
out=$(dry_run)
t_check "${cases[1]}" test "$out" = "insmod $tree/updates/loop.ko $opts"
modprobe loop
desc=$(modinfo -F description loop)
t_diag "modprobe -n -v loop: $out" "lsmod: $(lsmod)" "modinfo -F description loop: $desc" \
	"$p: $(params)"
t_check "${cases[2]}" test "$(is_rust_loop && echo "$desc")" = "Loopback device support, in Rust"
t_check "${cases[3]}" test "$(params)" = "3 7 64 "
unload_loop
t_check "${cases[4]}" test "$(loaded)" = none

# 5. Auto-loading. devtmpfs drops /dev/loop-control with the driver; on a
# distribution, systemd-tmpfiles makes it at boot from what
# `kmod static-nodes` reads in modules.devname (checked in 1). Make it the
# same way. Opening it makes the kernel request char-major-10-237. The
# options apply to the auto-loaded module too.
if [ ! -e /dev/loop-control ]; then
	mknod -m 0600 /dev/loop-control c 10 237 && made_ctl=1
fi
truncate -s 8M "$work/img"
dev=$(losetup -f --show "$work/img" 2>&1)
sysread /sys/block/loop0/loop/backing_file
t_diag "losetup -f --show: $dev, backing file $v; loaded: $(loaded), $(params)"
[ "$dev" = /dev/loop0 ] && [ "$v" = "$work/img" ] && is_rust_loop && [ "$(params)" = "3 7 64 " ]
t_check "${cases[5]}" test $? = 0
losetup -d "$dev" 2>/dev/null
unload_loop

# 6. Opening a block node of major 7 requests block-major-7-0.
mknod -m 0600 "$work/loop0" b 7 0
size=$(blockdev --getsize64 "$work/loop0" 2>&1)
t_diag "blockdev --getsize64 (7:0): $size; loaded: $(loaded)"
t_check "${cases[6]}" is_rust_loop
unload_loop

# 7. Uninstall; the options line now reaches loop.ko.
out=$(make -s -C "$T_TOP" uninstall 2>&1)
st=$?
dry=$(dry_run)
modprobe loop
t_diag "make uninstall: $out" "modprobe -n -v loop: $dry; loaded: $(loaded), $(params)"
[ $st = 0 ] && [ ! -e "$tree/updates/loop.ko" ] && [ "$(loaded)" = c ] &&
	[ "$dry" = "insmod $tree/$kloop $opts" ] && [ "$(params)" = "3 7 64 " ]
t_check "${cases[7]}" test $? = 0

# 8. Back as found: tests/run.sh loads rust_loop for the next program.
restore
trap - EXIT
# The guest's 9p is on /lib/modules again.
[ "$(loaded)" = none ] && [ ! -e "$tree/updates" ] && [ ! -e "$conf" ] && [ "$(fs_type /lib/modules)" = 9p ] &&
	[ "$(dry_run)" = "insmod $tree/$kloop" ]
t_check "${cases[8]}" test $? = 0
t_done
