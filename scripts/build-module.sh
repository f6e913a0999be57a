#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Builds rust_loop.ko out of tree, inside the chroot, against a kernel build
# directory, into a separate output directory (Kbuild's MO=), so modules for
# the test and the release kernel can sit side by side.
#
#   scripts/build-module.sh PROFILE OUTDIR [KBUILD ARGS...]
#   scripts/build-module.sh --kdir KDIR OUTDIR [KBUILD ARGS...]
#
# PROFILE (test, release or debian) builds (or prepares) that kernel first
# if it is not cached.
# With --kdir, any kernel build directory works; its make flags (LLVM=...)
# are taken from its make-flags file when it has one. NOCHROOT=1 builds with
# the host's toolchain instead of the chroot's.

. "$(dirname "$0")/lib.sh"

if [ "$1" = --kdir ]; then
	kdir=$(cd "$2" 2>/dev/null && pwd) ||
		rl_die "no kernel build directory $2 (install the kernel's headers, or give KDIR=)"
	flags=$(cat "$kdir/make-flags" 2>/dev/null || true)
	shift 2
	# Debian's headers (installed by linux-headers-<release>; their
	# Makefile includes the -common tree by absolute path) are built with
	# this machine's toolchain, which must be the kernel's, once their
	# Rust artifacts are complete.
	if [ -f "$kdir/.kernelvariables" ]; then
		"$RL_TOP/scripts/debian-rust-headers.sh" --if-needed "$kdir"
		NOCHROOT=1
	fi
else
	kdir=$(rl_kernel "$1")
	flags=$(cat "$kdir/make-flags")
	rl_prune_kernels "$1"
	# Debian's kernel is built against its headers, where the chroot has
	# them as a Debian machine does.
	[ -f "$kdir/kdir" ] && kdir=$(cat "$kdir/kdir")
	shift
fi
out=$1
shift
mkdir -p "$out"
out=$(cd "$out" && pwd)

make_cmd=(make -C "$kdir" M="$RL_TOP" MO="$out" $flags "$@" modules)
if [ "${NOCHROOT:-0}" = 1 ]; then
	"${make_cmd[@]}"
else
	# The kernel tree and its source must be visible inside the chroot.
	src=$(readlink -f "$kdir/source" 2>/dev/null || echo "$kdir")
	RL_BIND="$kdir $src $out" rl_in_chroot "${make_cmd[@]}"
fi
