#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# `make install` and `make uninstall`: puts rust_loop, built under the
# module name loop (Kbuild's RUST_LOOP_NAME=loop), in place of the kernel's
# loop.ko, and takes it out again. It owns one file,
# /lib/modules/<release>/updates/loop.ko, and runs depmod; depmod prefers
# updates/ to the kernel's own modules, so the name loop (modprobe loop,
# options loop, the loop.* kernel parameters, /sys/module/loop) and the
# aliases that auto-load the loop driver (char-major-10-237,
# block-major-7-*, devname:loop-control) resolve to it. Uninstalling
# removes that file and runs depmod: the kernel's loop.ko is the driver
# again. Documentation/install.rst has the why.
#
#   scripts/install.sh install KO        KO: a loop.ko built by Kbuild with
#                                        RUST_LOOP_NAME=loop; the release is
#                                        its vermagic
#   scripts/install.sh uninstall RELEASE
#
# Environment, as the kernel's modules_install: INSTALL_MOD_PATH (and
# DESTDIR before it) prefix /lib/modules; DEPMOD is the depmod to run
# (default depmod; DEPMOD=true to skip it, e.g. when packaging).
# It loads and unloads nothing: the loop driver in use stays loaded until
# `modprobe -r loop`.

set -euo pipefail

die() { printf 'rust_loop: error: %s\n' "$*" >&2; exit 1; }
say() { printf 'rust_loop: %s\n' "$*" >&2; }

# modinfo_of FILE: sets name, description and vermagic from a module
# file's .modinfo: kmod's modinfo ("field:  value" lines), or without it
# the file's NUL-separated strings ("field=value"). One exec: every exec
# costs in the debug guest that tests this.
modinfo_of() {
	local line key val
	name= description= vermagic=
	while IFS= read -r line; do
		key=${line%%[:=]*}
		val=${line#*[:=]}
		val=${val#"${val%%[! ]*}"}
		case $key in
		name | description | vermagic) [ -n "${!key}" ] || printf -v "$key" '%s' "$val" ;;
		esac
	done < <(if command -v modinfo >/dev/null; then modinfo "$1"; else tr '\0' '\n' <"$1"; fi)
}

# The running kernel's release, without an exec.
running() { local r; read -r r </proc/sys/kernel/osrelease; echo "$r"; }

OURS="Loopback device support, in Rust"
base=${DESTDIR:-}${INSTALL_MOD_PATH:-}
depmod=${DEPMOD:-depmod}
[ "$depmod" = depmod ] && ! command -v depmod >/dev/null && [ -x /sbin/depmod ] && depmod=/sbin/depmod

run_depmod() {
	"$depmod" -a ${base:+-b "$base"} "$1" || die "$depmod failed"
}

# check_resolves RELEASE WANT: after depmod, the name loop is the module
# WANT (a path under /lib/modules/RELEASE, or "kernel" for any other).
check_resolves() {
	local got
	[ "$depmod" = true ] && return 0
	command -v modinfo >/dev/null || return 0
	got=$(modinfo ${base:+-b "$base"} -k "$1" -n loop 2>/dev/null) || got=
	case $2 in
	kernel) [ "$got" != "$base/lib/modules/$1/updates/loop.ko" ] ;;
	*) [ "$got" = "$2" ] ;;
	esac || say "warning: modprobe loop now resolves to '${got:-nothing}'; see Documentation/install.rst"
}

case "${1:-}" in
install)
	[ $# = 2 ] || die "usage: $0 install KO"
	ko=$2
	[ -f "$ko" ] || die "no module $ko (make install builds it)"
	modinfo_of "$ko"
	[ "$name" = loop ] || die "$ko is not named loop (build it with RUST_LOOP_NAME=loop)"
	[ "$description" = "$OURS" ] || die "$ko is not rust_loop"
	rel=${vermagic%% *}
	[ -n "$rel" ] || die "$ko has no vermagic"
	tree=$base/lib/modules/$rel
	# Into a staging directory, as a package build does, the tree may be new.
	[ -d "$tree" ] || [ -n "$base" ] ||
		die "no module tree $tree for the kernel $rel that $ko was built for"
	if grep -qs '/loop\.ko' "$tree/modules.builtin"; then
		die "the kernel $rel has the loop driver built in (CONFIG_BLK_DEV_LOOP=y): no module can replace it"
	fi
	install -D -m 0644 "$ko" "$tree/updates/loop.ko"
	say "installed $tree/updates/loop.ko"
	run_depmod "$rel"
	check_resolves "$rel" "$tree/updates/loop.ko"
	if [ -z "$base" ] && [ "$rel" = "$(running)" ] && [ -d /sys/module/loop ]; then
		say "a loop driver is loaded; \`modprobe -r loop && modprobe loop\` switches to rust_loop"
	fi
	;;
uninstall)
	[ $# = 2 ] || die "usage: $0 uninstall RELEASE"
	rel=$2
	tree=$base/lib/modules/$rel
	f=$tree/updates/loop.ko
	if [ ! -e "$f" ]; then
		say "rust_loop is not installed in $tree"
		exit 0
	fi
	modinfo_of "$f"
	[ "$description" = "$OURS" ] || die "$f is not rust_loop; not removing it"
	rm -f "$f"
	rmdir --ignore-fail-on-non-empty "$tree/updates"
	say "removed $f"
	run_depmod "$rel"
	check_resolves "$rel" kernel
	if [ -z "$base" ] && [ "$rel" = "$(running)" ] && [ -e /sys/module/loop/parameters/nr_hw_queues ]; then
		say "rust_loop is still loaded; \`modprobe -r loop\` unloads it"
	fi
	;;
*) die "usage: $0 install KO | uninstall RELEASE" ;;
esac
