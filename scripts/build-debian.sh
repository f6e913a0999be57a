#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Prepares the `debian` kernel target and prints its directory: Debian's
# own packaged kernel (scripts/debian-kernel.lock), never rebuilt, with
# its headers completed by the Rust build artifacts they lack.
#
#   scripts/build-debian.sh
#
# Steps, each a one-line error when it fails:
#  1. the packages of the lock file, downloaded with apt in the chroot
#     (checked against the archive's signed index) and checked against the
#     lock's versions and SHA-256 sums;
#  2. the image and the module tree unpacked into <dir>/root, with depmod;
#     the headers and kbuild packages unpacked into the chroot, where a
#     Debian machine has them (/usr/src/linux-headers-<release>, the
#     modules' `build` link points there);
#  3. the kernel release, the kernel source version and the toolchain
#     named by the headers' .config checked against toolchain.lock and the
#     chroot's compilers;
#  4. the Rust artifacts (rust/*.rmeta, the proc-macro libraries,
#     scripts/target.json) generated from linux-source-7.3 with the
#     headers' own .config (olddefconfig must leave it unchanged: the
#     config decides struct layouts and bindings), then checked: every
#     Rust symbol that the stock kernel's Module.symvers exports is
#     defined by the generated objects, so their crate hashes are the
#     stock kernel's (a module built against anything else would fail to
#     load); then copied into the headers;
#  5. an initramfs that loads the modules the guest needs before its root
#     (9p, virtio_blk, ext4: modules in Debian's kernel) and hands over to
#     scripts/guest-init.
#
# The directory is cached under a key of the lock files, the chroot and
# this script.

. "$(dirname "$0")/lib.sh"

out=$(rl_kernel_dir debian)
if [ -f "$out/.complete" ] && [ -f "$RL_CHROOT/$(cat "$out/kdir")/rust/.complete" ]; then
	echo "$out"
	exit 0
fi
"$RL_TOP/scripts/chroot.sh" >&2

mkdir -p "$RL_CACHE/kernel"
exec 9>"$RL_CACHE/kernel/.lock-debian"
flock 9

start=$(date +%s)
lock=$RL_TOP/scripts/debian-kernel.lock
krel=$(sed -n 's/^# release[[:space:]]*//p' "$lock")
[ -n "$krel" ] || rl_die "$lock names no release"
entries=$(grep -v '^[[:space:]]*\(#\|$\)' "$lock")
debs=$RL_CACHE/debian-debs
mkdir -p "$debs"

# 1. Download and verify.
want=$(echo "$entries" | awk '{ printf "%s=%s ", $1, $2 }')
deb() { ls "$debs/${1}_${2//:/%3a}"_*.deb 2>/dev/null | head -1; }
missing=
while read -r pkg ver sum; do
	[ -n "$(deb "$pkg" "$ver")" ] || missing=1
done <<<"$entries"
if [ -n "$missing" ]; then
	rl_log "downloading Debian's kernel packages: $want"
	rl_in_chroot /bin/sh -c "cd '$debs' && apt-get -q download $want" >"$debs/download.log" 2>&1 ||
		{ tail -5 "$debs/download.log" >&2; rl_die "apt-get download of Debian's kernel packages failed (log: $debs/download.log)"; }
fi
while read -r pkg ver sum; do
	f=$(deb "$pkg" "$ver")
	[ -n "$f" ] || rl_die "$pkg $ver: not downloaded"
	have=$(sha256sum <"$f" | cut -d' ' -f1)
	[ "$have" = "$sum" ] || rl_die "$pkg $ver: SHA-256 $have, debian-kernel.lock wants $sum"
	got=$(dpkg-deb -f "$f" Package Version | tr '\n' ' ')
	[ "$got" = "Package: $pkg Version: $ver " ] || rl_die "$f is '$got', not $pkg $ver"
done <<<"$entries"
# pkgdeb PACKAGE: its verified .deb.
pkgdeb() { deb "$1" "$(echo "$entries" | awk -v p="$1" '$1 == p { print $2 }')"; }

# 2. Unpack.
rm -rf "$out"
mkdir -p "$out/root"
# linux-base has the module tree's modules.builtin and modules.order,
# without which modprobe does not know the built-in modules (fuse).
for p in linux-binary linux-modules linux-base; do
	dpkg-deb -x "$(pkgdeb "$p-$krel")" "$out/root"
done
moddir=$out/root/usr/lib/modules/$krel
[ -f "$moddir/vmlinuz" ] || rl_die "linux-binary-$krel has no usr/lib/modules/$krel/vmlinuz"
rl_in_chroot depmod -b "$out/root/usr" "$krel" || rl_die "depmod of the $krel module tree failed"
for p in "linux-headers-$krel" "linux-headers-${krel%-amd64}-common" "linux-kbuild-${krel%-amd64}"; do
	dpkg-deb -x "$(pkgdeb "$p")" "$RL_CHROOT"
done
hdr=/usr/src/linux-headers-$krel
[ -f "$RL_CHROOT$hdr/.config" ] || rl_die "no $hdr/.config after unpacking the headers"
# The headers package's links in the module tree (`build`, `source`),
# which the guest mounts at /lib/modules: there, as on a Debian machine,
# /lib/modules/$(uname -r)/build is the headers (make, DKMS).
cp -P "$RL_CHROOT/usr/lib/modules/$krel/build" "$RL_CHROOT/usr/lib/modules/$krel/source" "$moddir/" ||
	rl_die "linux-headers-$krel has no build and source links in /usr/lib/modules/$krel"

# 3 and 4: the versions, the toolchain and the Rust artifacts, as on a
# Debian machine (scripts/debian-rust-headers.sh), in the chroot.
srcver=$(rl_kernel_pkg_version)
binver=$(echo "$entries" | awk -v p="linux-binary-$krel" '$1 == p { print $2 }')
[ "$srcver" = "$binver" ] ||
	rl_die "linux-source-7.3 is $srcver (toolchain.lock) but the Debian kernel is $binver (debian-kernel.lock)"
if [ ! -f "$RL_KSRC/.complete" ]; then
	rl_log "unpacking linux-source into $RL_KSRC"
	rm -rf "$RL_KSRC"
	mkdir -p "$RL_KSRC"
	tar -xJf "$RL_CHROOT"/usr/src/linux-source-*.tar.xz -C "$RL_KSRC" --strip-components=1
	touch "$RL_KSRC/.complete"
fi
log=$out/build.log
rl_log "generating the Rust artifacts of Debian's $krel headers (log: $log)"
rl_in_chroot rm -rf "$hdr/rust"
# The generated tree is kept across preparations (a change of this script
# or of the initramfs need not build it again): Kbuild rebuilds what a
# changed source, config or compiler touches.
if ! rl_in_chroot "$RL_TOP/scripts/debian-rust-headers.sh" --src "$RL_KSRC" \
	--work "$RL_CACHE/debian-rustgen" --pkg-version "$binver" "$hdr" \
	>"$out/crate-check" 2>"$log"; then
	grep -E "error" "$log" | tail -5 >&2 || tail -20 "$log" >&2
	rl_die "completing Debian's $krel headers failed (log: $log)"
fi
cat "$out/crate-check" >&2
touch "$RL_CHROOT$hdr/rust/.complete"

# 5. The initramfs: busybox, its libraries, the modules the root needs
# (decompressed: busybox insmod reads plain ELF), and an init.
ird=$out/initramfs
rm -rf "$ird"
mkdir -p "$ird"/{bin,dev,proc,sys,newroot,lib/modules}
cp "$RL_CHROOT/bin/busybox" "$ird/bin/"
for l in $(rl_in_chroot ldd /bin/busybox | grep -oE '/[^ ]+'); do
	mkdir -p "$ird$(dirname "$l")"
	cp -L "$RL_CHROOT$l" "$ird$l"
done
rm -f "$out/initramfs.deps"
for m in 9p 9pnet_virtio virtio_blk ext4; do
	rl_in_chroot modprobe -d "$out/root/usr" -S "$krel" --show-depends "$m" >>"$out/initramfs.deps" ||
		rl_die "the module tree of $krel lacks $m, which the guest's root needs"
done
: >"$ird/modules"
while read -r cmd path rest; do
	[ "$cmd" = insmod ] || continue
	grep -qx "$(basename "${path%.xz}")" "$ird/modules" && continue
	name=$(basename "${path%.xz}")
	case $path in
	*.xz) xz -dc "$path" >"$ird/lib/modules/$name" ;;
	*) cp "$path" "$ird/lib/modules/$name" ;;
	esac || rl_die "cannot unpack $path"
	echo "$name" >>"$ird/modules"
done <"$out/initramfs.deps"
cat >"$ird/init" <<'EOF'
#!/bin/busybox sh
# Loads what the root needs, mounts the 9p root and hands over to the
# guest's init (scripts/guest-init), as scripts/qemu.sh's kernels without
# an initramfs do by themselves.
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t devtmpfs devtmpfs /dev
while read -r m; do
	/bin/busybox insmod "/lib/modules/$m" || echo "initramfs: insmod $m failed"
done </modules
init=/sbin/init
for a in $(/bin/busybox cat /proc/cmdline); do
	case $a in init=*) init=${a#init=} ;; esac
done
/bin/busybox mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288,cache=loose,ro root /newroot ||
	{ echo "initramfs: cannot mount the 9p root"; /bin/busybox poweroff -f; }
/bin/busybox mount --move /dev /newroot/dev
/bin/busybox umount /proc
exec /bin/busybox switch_root /newroot "$init"
EOF
chmod +x "$ird/init"
# Not compressed: under TCG the decompressor costs every boot more than
# reading the larger image.
rl_in_chroot /bin/sh -c "cd '$ird' && find . | cpio -o -H newc --quiet" >"$out/initrd.img" ||
	rl_die "packing the initramfs failed"

echo "$krel" >"$out/kernelrelease"
: >"$out/make-flags"
echo "$hdr" >"$out/kdir"
touch "$out/.complete"
rl_log "debian kernel $krel prepared in $(($(date +%s) - start)) s"
echo "$out"
