#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# `make dkms` and `make dkms-remove` as a Debian user runs them (issue 24),
# on a kernel whose headers are installed: Debian's (make check
# KERNEL=debian), where /lib/modules/$(uname -r)/build is
# linux-headers-<release> completed with the Rust artifacts. Debian's dkms
# builds rust_loop in the guest against those headers (its PRE_BUILD,
# scripts/debian-rust-headers.sh --if-needed, finds them complete), signs
# it with its own key (/var/lib/dkms/mok.key, generated on first use) and
# installs it as updates/dkms/loop.ko.xz, archiving the kernel's loop.ko.
# Then, with no loop driver loaded: modprobe loop with an `options loop`
# line, the signer and the taint, auto-loading by opening
# /dev/loop-control, and after `make dkms-remove`, Debian's loop.ko again.
#
# The guest's root is read-only: /usr/src (DKMS's sources) and the module
# tree get a tmpfs overlay for the duration; /var/lib is the guest's tmpfs,
# where the dkms package's empty /var/lib/dkms is made. The whole module
# tree stays visible, so depmod runs over all of it, as on a Debian
# machine. The guest is left as found.
#
# The build takes about 90 s in the guest under TCG. The test and release
# kernels, whose build trees are on the host, skip every case, as does
# LOOP_DRIVER=c.

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/install_lib.sh"

conf=/run/modprobe.d/rust-loop-dkms-test.conf
work=$T_SCRATCH/dkms-test
cases=(
	"make dkms: added, built against the installed headers, installed in updates/dkms/"
	"modprobe -n -v loop resolves to it, with the options loop line"
	"modprobe loop loads rust_loop as loop, signed with DKMS's key, tainted OE"
	"an options loop line in modprobe.d reaches /sys/module/loop/parameters"
	"opening /dev/loop-control with no loop driver loaded auto-loads it"
	"make dkms-remove: dkms forgets it, modprobe loop loads the kernel's loop.ko again"
	"the guest is left as found: module tree, /usr/src, DKMS tree, nothing loaded"
)

skip_all() {
	for c in "${cases[@]}"; do t_skip "$c" "$1"; done
	t_done
}
[ "${LOOP_DRIVER:-rust}" = c ] && skip_all "installs rust_loop in place of loop.ko; runs against rust_loop"
# Debian's packaged kernel has its headers installed (the debian target
# unpacks them into the guest's root, scripts/build-debian.sh): without
# them every case fails. A kernel built here has its build link lead to
# the host's build tree, which the guest does not see: it skips.
if [ ! -e "$tree/build/.config" ]; then
	read -r version </proc/version
	case $version in
	*debian-kernel@lists.debian.org*)
		t_diag "Debian's kernel $rel without its headers in $tree/build"
		for c in "${cases[@]}"; do t_fail "$c"; done
		t_done
		;;
	esac
	skip_all "no headers of $rel in the guest ($tree/build is the host's build tree): make check KERNEL=debian runs it"
fi
command -v dkms >/dev/null || skip_all "no dkms in the guest (scripts/lib.sh's RL_PACKAGES has it)"

ver=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"$/\1/p' "$T_TOP/dkms.conf")

# overlay DIR NAME: a writable tmpfs layer over DIR until restore.
mounted=()
overlay() {
	mkdir -p "$work/$2/upper" "$work/$2/work" &&
		mount -t overlay "rust-loop-dkms-$2" \
			-o "lowerdir=$1,upperdir=$work/$2/upper,workdir=$work/$2/work" "$1" &&
		mounted+=("$1")
}

made_dkms= made_ctl= loaded_overlay=
restore() {
	local i
	unload_loop
	[ -d /var/lib/dkms/rust_loop ] && dkms remove "rust_loop/$ver" --all >/dev/null 2>&1
	for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
		umount "${mounted[i]}"
	done
	[ -n "$made_dkms" ] && rm -rf /var/lib/dkms
	[ -n "$loaded_overlay" ] && modprobe -r overlay
	rm -rf "$work" "$conf" ${made_ctl:+/dev/loop-control}
	mounted=() made_dkms= made_ctl= loaded_overlay=
}

unload_all
rm -rf "$work"
mkdir -p "$work" /run/modprobe.d
trap restore EXIT
[ -d /sys/module/overlay ] || { modprobe overlay && loaded_overlay=1; }
overlay /usr/src src
overlay "$tree" modules
[ -d /var/lib/dkms ] || { mkdir /var/lib/dkms && made_dkms=1; }
[ ${#mounted[@]} = 2 ] || t_diag "overlays mounted: ${mounted[*]}"

# 1. make dkms, as root in the project directory.
out=$(make -s -C "$T_TOP" dkms 2>&1)
st=$?
status=$(dkms status "rust_loop/$ver" -k "$rel" 2>&1)
t_diag "make dkms (exit $st): $out" "dkms status: $status"
installed=
for f in "$tree"/updates/dkms/loop.ko*; do
	[ -e "$f" ] && installed=updates/dkms/${f##*/}
done
[ $st = 0 ] && [ -n "$installed" ] && [ "$status" = "rust_loop/$ver, $rel, $(uname -m): installed (Original modules exist)" ] &&
	has_line "$tree/modules.dep" "$installed:" && ! has_line "$tree/modules.dep" "$kloop:"
t_check "${cases[0]}" test $? = 0

# 2, 3, 4. By name, with options as users write them for loop.ko.
echo "options loop $opts" >"$conf"
out=$(dry_run)
t_check "${cases[1]}" test "$out" = "insmod $tree/$installed $opts"
modprobe loop
signer=$(modinfo -F signer loop)
sysread /sys/module/loop/taint
taint=$v
t_diag "modprobe -n -v loop: $out" "lsmod: $(lsmod)" "modinfo -F signer loop: $signer" \
	"/sys/module/loop/taint: $taint" "$p: $(params)"
is_rust_loop && [ "$signer" = "DKMS module signing key" ] && [ "$taint" = OE ]
t_check "${cases[2]}" test $? = 0
t_check "${cases[3]}" test "$(params)" = "3 7 64 "
unload_loop

# 5. Auto-loading by opening /dev/loop-control (made as
# systemd-tmpfiles makes it from modules.devname, tests/install_test.sh).
if [ ! -e /dev/loop-control ]; then
	mknod -m 0600 /dev/loop-control c 10 237 && made_ctl=1
fi
truncate -s 8M "$work/img"
dev=$(losetup -f --show "$work/img" 2>&1)
t_diag "losetup -f --show: $dev; loaded: $(loaded), $(params)"
[ "$dev" = /dev/loop0 ] && is_rust_loop
t_check "${cases[4]}" test $? = 0
losetup -d "$dev" 2>/dev/null
unload_loop

# 6. dkms remove puts the archived loop.ko back; the options line now
# reaches it.
out=$(make -s -C "$T_TOP" dkms-remove 2>&1)
st=$?
status=$(dkms status rust_loop 2>&1)
dry=$(dry_run)
modprobe loop
t_diag "make dkms-remove (exit $st): $out" "dkms status rust_loop: '$status'" \
	"modprobe -n -v loop: $dry; loaded: $(loaded), $(params)"
[ $st = 0 ] && [ -z "$status" ] && [ ! -e "/usr/src/rust_loop-$ver" ] && [ ! -e "$tree/$installed" ] &&
	[ "$(loaded)" = c ] && [ "$dry" = "insmod $tree/$kloop $opts" ] && [ "$(params)" = "3 7 64 " ]
t_check "${cases[5]}" test $? = 0

# 7. Back as found: tests/run.sh loads rust_loop for the next program.
restore
trap - EXIT
[ "$(loaded)" = none ] && [ ! -e "$tree/updates" ] && [ ! -e "$conf" ] &&
	[ -z "$(fs_type "$tree")" ] && [ -z "$(fs_type /usr/src)" ] && [ ! -d /sys/module/overlay ] &&
	[ ! -e /var/lib/dkms/rust_loop ] && [ "$(dry_run)" = "insmod $tree/$kloop" ]
t_check "${cases[6]}" test $? = 0
t_done
