#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Builds one guest kernel profile (test or release) inside the chroot and
# prints the build directory. A finished build is cached under a key of the
# source version, the config fragments, the toolchain and this script, so a
# second call with nothing changed returns at once.
#
#   scripts/build-kernel.sh test|release
#
# The config is tinyconfig + configs/base.config + configs/<profile>.config,
# resolved inside the chroot (CONFIG_RUST silently drops when the Rust
# toolchain is absent at config time). Every option the fragments ask for is
# then checked in the resolved .config, so a dropped option (CONFIG_RUST
# first of all) fails the build instead of producing a different kernel.

. "$(dirname "$0")/lib.sh"

profile=${1:?usage: $0 test|release}
flags=$(rl_profile_make_flags "$profile")
out=$(rl_kernel_dir "$profile")

if [ -f "$out/.complete" ]; then
	echo "$out"
	exit 0
fi

"$RL_TOP/scripts/chroot.sh" >&2

# One build per profile at a time; a second caller waits, then finds it.
mkdir -p "$RL_CACHE/kernel"
exec 9>"$RL_CACHE/kernel/.lock-$profile"
flock 9
if [ -f "$out/.complete" ]; then
	echo "$out"
	exit 0
fi

if [ ! -f "$RL_KSRC/.complete" ]; then
	rl_log "unpacking linux-source into $RL_KSRC"
	rm -rf "$RL_KSRC"
	mkdir -p "$RL_KSRC"
	tarball=$(ls "$RL_CHROOT"/usr/src/linux-source-*.tar.xz)
	tar -xJf "$tarball" -C "$RL_KSRC" --strip-components=1
	touch "$RL_KSRC/.complete"
fi

# Drop unfinished builds of this profile under other keys; an unfinished
# build under this key (interrupted, or failed) is continued.
for d in "$RL_CACHE/kernel/$profile"-*; do
	[ "$d" != "$out" ] && [ -d "$d" ] && [ ! -f "$d/.complete" ] && rm -rf "$d"
done
mkdir -p "$out"
log=$out/build.log
rl_log "building the $profile kernel in $out (log: $log)"
start=$(date +%s)
if ! rl_in_chroot /bin/bash -c '
	set -euo pipefail
	src=$1 out=$2 top=$3 profile=$4 flags=$5
	cd "$src"
	make -s O="$out" $flags tinyconfig
	./scripts/kconfig/merge_config.sh -m -O "$out" "$out/.config" \
		"$top/configs/base.config" "$top/configs/$profile.config" >/dev/null
	make -s O="$out" $flags olddefconfig
	missing=0
	while read -r line; do
		opt=$(echo "$line" | grep -oE "CONFIG_[A-Za-z0-9_]+")
		got=$(grep -E "^$opt=|^# $opt is not set" "$out/.config" || true)
		# An option asked off may be absent altogether (its dependencies are off).
		case "$line" in "# "*) [ -z "$got" ] && got=$line ;; esac
		if [ "$got" != "$line" ]; then
			echo "config: asked for \"$line\", got \"${got:-nothing}\"" >&2
			missing=1
		fi
	done < <(cat "$top/configs/base.config" "$top/configs/$profile.config" |
		grep -E "^(CONFIG_|# CONFIG_.* is not set)")
	[ $missing = 0 ] || { echo "config: the kernel would not be what configs/ asks for" >&2; exit 1; }
	grep -qx CONFIG_RUST=y "$out/.config" || { echo "config: CONFIG_RUST is not y" >&2; exit 1; }
	make -s O="$out" $flags rustavailable
	make O="$out" $flags -j"$(nproc)" bzImage modules
	make -s O="$out" $flags INSTALL_MOD_PATH="$out/modroot" INSTALL_MOD_STRIP=1 modules_install
	make -s O="$out" $flags INSTALL_HDR_PATH="$out/uapi" headers_install
	make -s O="$out" $flags kernelrelease >"$out/kernelrelease"
' rl-build "$RL_KSRC" "$out" "$RL_TOP" "$profile" "$flags" >"$log" 2>&1; then
	grep -E "error|Error|config:" "$log" | tail -20 >&2 || tail -20 "$log" >&2
	rl_die "the $profile kernel build failed (log: $log)"
fi
echo "$flags" >"$out/make-flags"
touch "$out/.complete"
rl_log "$profile kernel built in $(($(date +%s) - start)) s"
echo "$out"
