#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Builds rublk, ublk's user-space loop target in Rust (crates.io,
# GPL-2.0+), at the version of scripts/bench.lock, in the chroot with its
# cargo and without default features, for make bench's ublk peer:
#
#   scripts/build-rublk.sh [OUTDIR]     (default build/rublk)
#
# OUTDIR/bin/rublk is the binary; OUTDIR/version says which version it is,
# so a changed lock builds again. The crates are fetched from crates.io
# into $RL_CACHE/cargo (the only download), with the dependency versions
# of rublk's published Cargo.lock (--locked).

. "$(dirname "$0")/lib.sh"

out=${1:-$RL_TOP/build/rublk}
ver=$(awk '$1 == "rublk" { print $2 }' "$RL_TOP/scripts/bench.lock")
[ -n "$ver" ] || rl_die "no rublk version in scripts/bench.lock"
if [ -x "$out/bin/rublk" ] && [ "$(cat "$out/version" 2>/dev/null)" = "$ver" ]; then
	exit 0
fi
"$RL_TOP/scripts/chroot.sh" >&2
mkdir -p "$out" "$RL_CACHE/cargo"
out=$(cd "$out" && pwd)
# The host's certificate authorities, for a network whose TLS proxy
# re-signs crates.io with its own (the chroot's bundle is Debian's only).
ca=
for f in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt; do
	[ -f "$f" ] && { cp "$f" "$RL_CACHE/cargo/host-ca.crt"; ca=$RL_CACHE/cargo/host-ca.crt; break; }
done
rl_log "building rublk $ver (cargo install, in the chroot)"
rl_in_chroot env CARGO_HOME="$RL_CACHE/cargo" CARGO_TARGET_DIR="$RL_CACHE/cargo/target" \
	${ca:+CARGO_HTTP_CAINFO="$ca"} \
	cargo install --quiet --locked --no-default-features --version "=$ver" \
	--root "$out" rublk >&2 || rl_die "building rublk $ver failed"
echo "$ver" >"$out/version"
