# SPDX-License-Identifier: GPL-2.0
#
# Shared settings of the rust_loop build and test pipeline, sourced by the
# other scripts in this directory. It owns the layout of the cache directory
# and the cache keys; nothing here builds anything.
#
# Cache layout ($RUST_LOOP_CACHE, default ~/.cache/rust_loop):
#   chroot-<key>/            trixie chroot with the pinned toolchain and the
#                            guest userland; <key> hashes toolchain.lock and
#                            the package list below
#   src/linux-<version>/     the unpacked linux-source package
#   kernel/<profile>-<key>/  an O= kernel build; <key> hashes the source
#                            version, the config fragments, the toolchain and
#                            scripts/build-kernel.sh; for the debian profile,
#                            Debian's unpacked kernel (scripts/build-debian.sh)
#   debian-debs/             Debian's kernel packages (debian-kernel.lock)
#   debian-rustgen/          the Rust artifacts of Debian's headers, built
#                            from src/ with their .config (an O= tree)
#   runs/<id>/               one directory per guest boot: the serial log, the
#                            command, its exit status and, while the guest
#                            runs, its scratch disk

set -euo pipefail

RL_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RL_CACHE=${RUST_LOOP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rust_loop}
RL_LOCK=$RL_TOP/scripts/toolchain.lock
RL_SUITE=trixie
RL_MIRROR=${RUST_LOOP_MIRROR:-http://deb.debian.org/debian}

# Packages of the chroot besides the pinned toolchain: kernel build tools,
# QEMU, and the guest's userland (the chroot is also the guest's root file
# system, shared read-only over 9p).
RL_PACKAGES="build-essential bc bison flex libelf-dev libssl-dev cpio kmod
python3 rsync xz-utils zstd ca-certificates
qemu-system-x86
util-linux mount fdisk e2fsprogs fio busybox procps psmisc strace jq file stress-ng
gcc-multilib
libaio1t64 liburing2
dmsetup libfuse3-dev fuse3
dwarves
squashfs-tools erofs-utils xorriso dosfstools btrfs-progs xfsprogs
qemu-utils cargo
dkms openssl"

rl_log() { printf '%s\n' "rust_loop: $*" >&2; }
rl_die() { printf '%s\n' "rust_loop: error: $*" >&2; exit 1; }

# Lines "package version" of the lock file.
rl_lock_entries() { grep -v '^[[:space:]]*\(#\|$\)' "$RL_LOCK"; }

rl_hash() { sha256sum | cut -c1-12; }

rl_chroot_key() {
	{ rl_lock_entries; echo "$RL_PACKAGES"; echo "$RL_SUITE"; } | rl_hash
}

RL_CHROOT=$RL_CACHE/chroot-$(rl_chroot_key)

# Version of the kernel source package, from the lock file.
rl_kernel_pkg_version() { rl_lock_entries | awk '$1 == "linux-source-7.3" { print $2 }'; }
RL_KSRC=$RL_CACHE/src/linux-$(rl_kernel_pkg_version | tr "~+:" "___")

# Compiler selection per kernel profile: the test kernel needs clang for
# KASAN with Rust; the release kernel is built with gcc, as Debian does.
rl_profile_make_flags() {
	case "$1" in
	test | kcsan) echo "LLVM=-19" ;;
	release | debian) echo "" ;;
	*) rl_die "unknown kernel profile '$1' (test, release, kcsan or debian)" ;;
	esac
}

# The debian profile is Debian's packaged kernel (scripts/build-debian.sh),
# keyed by its lock file, the toolchain, the chroot its headers are
# unpacked into, and the script.
rl_kernel_key() {
	local profile=$1
	if [ "$profile" = debian ]; then
		{
			cat "$RL_TOP/scripts/debian-kernel.lock"
			rl_lock_entries
			rl_chroot_key
			cat "$RL_TOP/scripts/build-debian.sh"
		} | rl_hash
		return
	fi
	{
		rl_kernel_pkg_version
		rl_lock_entries
		rl_profile_make_flags "$profile"
		cat "$RL_TOP/configs/base.config" "$RL_TOP/configs/$profile.config"
		cat "$RL_TOP/scripts/build-kernel.sh"
	} | rl_hash
}

rl_kernel_dir() { echo "$RL_CACHE/kernel/$1-$(rl_kernel_key "$1")"; }

# Builds (or, for debian, prepares) the kernel of a profile if it is not
# cached, and prints its directory.
rl_kernel() {
	case "$1" in
	debian) "$RL_TOP/scripts/build-debian.sh" ;;
	*) "$RL_TOP/scripts/build-kernel.sh" "$1" ;;
	esac
}

# Deletes the builds of a profile under keys other than the current one.
rl_prune_kernels() {
	local cur d
	cur=$(rl_kernel_dir "$1")
	for d in "$RL_CACHE/kernel/$1"-*; do
		# Two builds may prune at once (make check builds its modules
		# side by side): the second finds the tree half gone.
		[ -d "$d" ] && [ "$d" != "$cur" ] && { rm -rf "$d" 2>/dev/null || true; }
	done
	return 0
}

# Run a command inside the chroot, in a private mount namespace so that no
# mount outlives the command (a leftover rbind of /dev under a directory
# that is later deleted would remove the host's device nodes). The project
# directory, the cache and any extra directories given in RL_BIND are
# visible at the same paths as on the host.
rl_in_chroot() {
	[ -x "$RL_CHROOT/usr/bin/env" ] || rl_die "no chroot at $RL_CHROOT; run scripts/chroot.sh first"
	local binds="$RL_TOP $RL_CACHE ${RL_BIND:-}"
	unshare --mount --propagation private -- /bin/bash -c '
		set -e
		root=$1; binds=$2; shift 2
		mount -t proc proc "$root/proc"
		mount --rbind /sys "$root/sys"
		mount --rbind /dev "$root/dev"
		mount -t tmpfs tmpfs "$root/tmp"
		# A clean view of the chroot without the mounts below, exported to
		# the guest as its root file system by scripts/qemu.sh.
		mkdir -p "$root/mnt/guest-root"
		mount --bind "$root" "$root/mnt/guest-root"
		for d in $binds; do
			[ -d "$d" ] || continue
			mkdir -p "$root$d"
			mount --bind "$d" "$root$d"
		done
		exec chroot "$root" /usr/bin/env -i \
			HOME=/root TERM="${TERM:-dumb}" LANG=C.UTF-8 \
			PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
			"$@"
	' rl-chroot "$RL_CHROOT" "$binds" "$@"
}
