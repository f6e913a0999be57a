#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Creates the trixie chroot that holds the pinned toolchain (toolchain.lock),
# QEMU and the guest userland, or checks an existing one.
#
#   scripts/chroot.sh          create it if missing, then check it
#   scripts/chroot.sh check    only check the installed versions
#   scripts/chroot.sh path     print its path
#   scripts/chroot.sh run CMD  run CMD inside it
#
# The host needs debootstrap and unshare; on a Debian/Ubuntu host a missing
# debootstrap is installed with apt. Nothing else is installed on the host.

. "$(dirname "$0")/lib.sh"

check() {
	local bad=0 pkg want have installed
	# shellcheck disable=SC2046
	installed=$(rl_in_chroot dpkg-query -W -f '${Package} ${Version}\n' \
		$(rl_lock_entries | awk '{ print $1 }') 2>/dev/null || true)
	while read -r pkg want; do
		have=$(echo "$installed" | awk -v p="$pkg" '$1 == p { print $2 }')
		if [ "$have" != "$want" ]; then
			rl_log "toolchain mismatch: $pkg is '${have:-not installed}', toolchain.lock wants '$want'"
			bad=1
		fi
	done < <(rl_lock_entries)
	[ $bad = 0 ] || rl_die "the chroot $RL_CHROOT does not match scripts/toolchain.lock"
}

create() {
	[ "$(id -u)" = 0 ] || rl_die "creating the chroot needs root (debootstrap, chroot, mount)"
	if ! command -v debootstrap >/dev/null; then
		command -v apt-get >/dev/null || rl_die "please install debootstrap"
		rl_log "installing debootstrap on the host"
		DEBIAN_FRONTEND=noninteractive apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
	fi
	local tmp=$RL_CHROOT.tmp
	mkdir -p "$RL_CACHE"
	# A finished debootstrap of an earlier, interrupted attempt is reused.
	if [ ! -f "$tmp/.debootstrapped" ]; then
		rm -rf --one-file-system "$tmp"
		rl_log "debootstrap $RL_SUITE into $tmp"
		debootstrap --variant=minbase "$RL_SUITE" "$tmp" "$RL_MIRROR" \
			>"$RL_CACHE/debootstrap.log" 2>&1 ||
			{ tail -20 "$RL_CACHE/debootstrap.log"; rl_die "debootstrap failed (log: $RL_CACHE/debootstrap.log)"; }
		touch "$tmp/.debootstrapped"
	fi
	cat >"$tmp/etc/apt/sources.list.d/backports.sources" <<-SRC
	Types: deb
	URIs: $RL_MIRROR
	Suites: $RL_SUITE-backports
	Components: main
	Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
	SRC
	# Do not start services inside the chroot.
	printf '#!/bin/sh\nexit 101\n' >"$tmp/usr/sbin/policy-rc.d"
	chmod +x "$tmp/usr/sbin/policy-rc.d"
	local pinned
	pinned=$(rl_lock_entries | awk '{ printf "%s=%s ", $1, $2 }')
	rl_log "installing the pinned toolchain and the guest userland"
	RL_CHROOT=$tmp rl_in_chroot /bin/sh -c "
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq &&
		apt-get install -y -qq --no-install-recommends $pinned $(echo $RL_PACKAGES)" \
		>"$RL_CACHE/apt.log" 2>&1 ||
		{ tail -20 "$RL_CACHE/apt.log"; rl_die "apt-get failed (log: $RL_CACHE/apt.log)"; }
	RL_CHROOT=$tmp rl_in_chroot apt-get clean
	touch "$tmp/.complete"
	mv "$tmp" "$RL_CHROOT"
}

case "${1:-ensure}" in
ensure)
	[ -f "$RL_CHROOT/.complete" ] || create
	check
	;;
check) check ;;
path) echo "$RL_CHROOT" ;;
run)
	shift
	rl_in_chroot "$@"
	;;
*) rl_die "usage: $0 [ensure|check|path|run CMD...]" ;;
esac
