#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The Rust copies of the kernel values that bindgen cannot see or that
# rust/uapi does not include (sys/helpers.rs, sys/uapi.rs) against their
# one source, include/rust_loop_helpers.h, whose RUST_LOOP_<NAME> macros
# rust_loop_helpers.c checks against the kernel's own definitions. Kbuild
# runs this before it compiles the crate:
#
#   scripts/check-helper-consts.sh HEADER RUST_FILE...
#
# Every `const NAME: T = VALUE;` of the Rust files whose VALUE is a number
# (1 << 22, 0x10, 168; not one made of other constants) must have a
# RUST_LOOP_NAME in HEADER with the same value, and every RUST_LOOP_ value
# of HEADER a Rust const; a difference is one error line per constant and
# a failed build. Values are compared after evaluation by the shell.
set -eu
hdr=${1:?usage: $0 HEADER RUST_FILE...}
shift
[ $# -gt 0 ] || { echo "usage: $0 HEADER RUST_FILE..." >&2; exit 2; }
tab=$(printf '\t')
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# NAME VALUE lines: the header's object-like macros with a value...
sed -n "s/^#define[ $tab]\{1,\}RUST_LOOP_\([A-Z0-9_]*\)[ $tab]\{1,\}\(.*\)$/\1 \2/p" "$hdr" >"$tmp/h"
# ...and the Rust constants with a numeric value (FILE NAME VALUE).
for rs in "$@"; do
	sed -n "s/^[ $tab]*pub(crate) const \([A-Z0-9_]*\): [a-z0-9]* = \([0-9][0-9a-fA-Fx_ <|()]*\);$/\1 \2/p" "$rs" |
		sed "s|^|$rs |"
done >"$tmp/r"

# value EXPR: EXPR evaluated, C's U suffixes and Rust's _ separators gone.
value() {
	e=$(printf '%s' "$1" | sed 's/\([0-9a-fA-Fx]\)[uU]\b/\1/g; s/_//g')
	echo $(($e))
}

bad=0
while read -r rs name val; do
	hv=$(awk -v n="$name" '$1 == n { $1 = ""; print; exit }' "$tmp/h")
	if [ -z "$hv" ]; then
		echo "$rs: const $name has no RUST_LOOP_$name in $hdr" >&2
		bad=1
	elif [ "$(value "$val")" != "$(value "$hv")" ]; then
		echo "$rs: const $name = $val, but $hdr has RUST_LOOP_$name$hv" >&2
		bad=1
	fi
done <"$tmp/r"
while read -r name val; do
	awk -v n="$name" '$2 == n { f = 1 } END { exit !f }' "$tmp/r" ||
		{ echo "$hdr: RUST_LOOP_$name has no const $name in $*" >&2; bad=1; }
done <"$tmp/h"
exit $bad
