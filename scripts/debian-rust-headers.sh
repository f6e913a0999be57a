#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Completes a Debian kernel's headers with the Rust build artifacts they
# lack, so that Rust modules build against them: rust/*.rmeta, the
# proc-macro libraries rust/*.so, rust/kernel/generated_arch_*.rs and
# scripts/target.json, generated from
# Debian's linux-source with the headers' own .config.
#
#   scripts/debian-rust-headers.sh [--src DIR] [--work DIR] [--pkg-version V]
#                                  [--check | --if-needed] HEADERS
#
# HEADERS is the headers' directory (/usr/src/linux-headers-<release>, or
# /lib/modules/<release>/build). --src is an unpacked linux-source tree
# (default: /usr/src/linux-source-<major.minor>.tar.xz, unpacked into the
# work directory); --work is where the artifacts are built (default
# ./build/rust-headers-<release>). --pkg-version names the headers'
# package version when they were unpacked from a verified .deb rather than
# installed (the chroot of scripts/build-debian.sh). --check only tells
# whether HEADERS are complete (exit 0) or not (exit 1); --if-needed
# completes them only if they are not.
#
# It runs where the headers are (a Debian machine, or the project's chroot
# for the debian target, scripts/build-debian.sh), with that machine's
# compilers, and refuses with a one-line error, changing nothing, when:
# HEADERS are not a Debian kernel's, the kernel has no CONFIG_RUST, the
# source is missing or of another version than the headers, the compilers
# are not the ones the kernel was built with (gcc, rustc, bindgen, as the
# .config names them), olddefconfig changes the headers' .config (pahole
# missing, or another source), or the generated crates do not define every
# Rust symbol the kernel's Module.symvers exports (other crate hashes: a
# module built against them would not load).

set -euo pipefail

die() { printf 'debian-rust-headers: error: %s\n' "$*" >&2; exit 1; }
log() { printf 'debian-rust-headers: %s\n' "$*" >&2; }

src= work= check= hver= ifneeded=
while [ $# -gt 1 ]; do
	case $1 in
	--src) src=$2; shift 2 ;;
	--work) work=$2; shift 2 ;;
	--pkg-version) hver=$2; shift 2 ;;
	--check) check=1; shift ;;
	--if-needed) ifneeded=1; shift ;;
	*) die "unknown option $1" ;;
	esac
done
[ $# = 1 ] || die "usage: $0 [--src DIR] [--work DIR] [--check] HEADERS"
hdr=$(readlink -f "$1") || die "no headers directory $1"
[ -f "$hdr/.config" ] && [ -f "$hdr/Module.symvers" ] ||
	die "$1 is not a kernel's headers directory (no .config, Module.symvers): install linux-headers-\$(uname -r)"
complete() { [ -f "$hdr/rust/libkernel.rmeta" ] && [ -f "$hdr/scripts/target.json" ]; }
if [ -n "$check" ]; then
	complete
	exit
fi
[ -n "$ifneeded" ] && complete && exit 0

kcfg() { sed -n "s/^$1=\"\{0,1\}\([^\"]*\)\"\{0,1\}$/\1/p" "$hdr/.config"; }
[ "$(kcfg CONFIG_RUST)" = y ] || die "the kernel of $hdr has no CONFIG_RUST: Rust modules cannot load on it"
krel=$(cat "$hdr/include/config/kernel.release" 2>/dev/null) || die "$hdr has no include/config/kernel.release"

# The Debian package of the headers.
if [ -z "$hver" ]; then
	hpkg=$(dpkg-query -S "$hdr/.config" 2>/dev/null || true)
	hpkg=${hpkg%%:*}
	[ -n "$hpkg" ] || die "$hdr/.config belongs to no Debian package: not Debian's headers"
	hver=$(dpkg-query -W -f '${Version}' "$hpkg")
fi

# The toolchain the kernel was built with.
# The compiler's name is the first word of its version text
# (x86_64-linux-gnu-gcc-14), as the headers' .kernelvariables set CC.
cc=$(kcfg CONFIG_CC_VERSION_TEXT | cut -d' ' -f1)
tool() {
	local what=$1 want=$2 have
	# The whole output, then its first line: `| head -1` would end the
	# tool with SIGPIPE now and then, and pipefail would read that as
	# "no such tool".
	have=$("${@:3}" 2>/dev/null) || have=
	have=${have%%$'\n'*}
	[ "$want" = "$have" ] ||
		die "the kernel was built with $what '$want', this machine has '${have:-none}' (install the toolchain the kernel names)"
}
tool gcc "$(kcfg CONFIG_CC_VERSION_TEXT)" "$cc" --version
tool rustc "$(kcfg CONFIG_RUSTC_VERSION_TEXT)" rustc --version
tool bindgen "$(kcfg CONFIG_BINDGEN_VERSION_TEXT)" bindgen --version
command -v pahole >/dev/null || die "no pahole: install pahole (Debian dwarves), which the kernel's .config needs"

# The source's package version must be the headers'.
mm=$(echo "$krel" | cut -d. -f1,2)
sver=$(dpkg-query -W -f '${Version}' "linux-source-$mm" 2>/dev/null || true)
[ "$sver" = "$hver" ] ||
	die "linux-source-$mm is '${sver:-not installed}', the headers are $hver: install linux-source-$mm=$hver"

work=${work:-$PWD/build/rust-headers-$krel}
mkdir -p "$work"
work=$(readlink -f "$work")
if [ -z "$src" ]; then
	tarball=/usr/src/linux-source-$mm.tar.xz
	[ -f "$tarball" ] || die "no $tarball: install linux-source-$mm=$hver"
	src=$work/src
	if [ ! -f "$src/.complete" ]; then
		log "unpacking $tarball"
		rm -rf "$src"
		mkdir -p "$src"
		tar -xJf "$tarball" -C "$src" --strip-components=1
		touch "$src/.complete"
	fi
fi
[ -f "$src/Makefile" ] || die "no kernel source in $src"
srcrel=$(make -s -C "$src" kernelversion)
[ "$srcrel" = "${krel%%[-+]*}" ] || die "the source in $src is $srcrel, the headers are $krel"

gen=$work/o
mkdir -p "$gen"
cp "$hdr/.config" "$gen/.config"
flags=(CC="$cc" LOCALVERSION=)
log "generating the Rust artifacts for $krel in $gen"
make -s -C "$src" O="$gen" "${flags[@]}" olddefconfig
if ! cmp -s "$hdr/.config" "$gen/.config"; then
	diff "$hdr/.config" "$gen/.config" | head -10 >&2 || true
	die "olddefconfig changes the .config of $hdr: not the source or the tools this kernel was built from"
fi
make -s -C "$src" O="$gen" "${flags[@]}" -j"$(nproc)" modules_prepare

# Every Rust symbol the kernel exports is defined by what was built: the
# same crates, under the same hashes.
awk '$2 ~ /^_R/ { print $2 }' "$hdr/Module.symvers" | sort -u >"$work/symvers-rust"
nm --defined-only "$gen"/rust/*.o 2>/dev/null | awk '$3 ~ /^_R/ { print $3 }' | sort -u >"$work/built-rust"
crates() {
	grep -oE '^_R[A-Za-z]*Cs[0-9A-Za-z]+_[0-9]+(core|kernel)' "$1" |
		sed -E 's/^_R[A-Za-z]*C(s[0-9A-Za-z]+)_[0-9]+(core|kernel)$/\2 C\1/' | sort -u | tr '\n' ' '
}
nsyms=$(wc -l <"$work/symvers-rust")
[ "$nsyms" -gt 0 ] || die "the kernel's Module.symvers exports no Rust symbol"
nmissing=$(comm -23 "$work/symvers-rust" "$work/built-rust" | wc -l)
[ "$nmissing" = 0 ] ||
	die "crate hash mismatch: $nmissing of $nsyms Rust symbols of $hdr/Module.symvers are not built (kernel: $(crates "$work/symvers-rust"); built: $(crates "$work/built-rust"))"
echo "crate hashes $(crates "$work/symvers-rust")match $hdr/Module.symvers ($nsyms Rust symbols)"

# Into the headers: rust/ is new; target.json goes where the headers'
# scripts/ is (Debian's headers link it to the kbuild package). The list
# of what was added is kept, so that it can be taken out again.
# The kernel crate's macros (warn_on!) include the generated
# rust/kernel/generated_arch_*.rs into the module being built.
added=$(cd "$gen" && ls -1 rust/*.rmeta rust/*.so rust/kernel/generated_arch_*.rs scripts/target.json)
for f in $added; do
	mkdir -p "$(dirname "$hdr/$f")"
	cp "$gen/$f" "$hdr/$f"
done
echo "$added" | sed "s|^|$hdr/|" >"$hdr/rust/.rust_loop-added"
log "$hdr completed; the files added are listed in $hdr/rust/.rust_loop-added"
