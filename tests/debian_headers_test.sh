#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# scripts/debian-rust-headers.sh, which `make install`, `make dkms` and the
# debian target run to complete a Debian kernel's headers with the Rust
# build artifacts, refuses bad input with one line saying why and changes
# nothing (issue 24, item 4):
#
#  - headers that no Debian package owns;
#  - a kernel without CONFIG_RUST;
#  - a linux-source-7.3 of another version than the headers;
#  - a compiler other than the one the kernel's .config names (checked
#    with a gcc whose version text ends late, as a slow --version does: a
#    check that read only its first line and left would see it die of
#    SIGPIPE and call it missing);
#  - and it finds Debian's headers in the guest's root complete (the debian
#    target completed them; skipped where it has not run yet).
#
# The driver under test plays no part: the cases run once, for rust_loop.

. "$(dirname "$0")/lib.sh"

script=$T_TOP/scripts/debian-rust-headers.sh
work=$T_SCRATCH/debian-headers-test
deb=$(ls -d /usr/src/linux-headers-*-amd64 2>/dev/null | head -1)
cases=("headers no Debian package owns are refused" "a kernel without CONFIG_RUST is refused"
	"linux-source of another version than the headers is refused"
	"a compiler other than the kernel's is refused" "Debian's headers in the guest are complete")

if [ "${LOOP_DRIVER:-rust}" = c ]; then
	for c in "${cases[@]}"; do t_skip "$c" "not a driver test: runs once, with rust_loop"; done
	t_done
fi
cleanup() { rm -rf "$work"; }
trap cleanup EXIT

# fake DIR [CONFIG LINES...]: a headers-like directory.
fake() {
	local d=$1 l
	shift
	rm -rf "$d"
	mkdir -p "$d/include/config" "$d/scripts"
	echo 7.3.4+deb13-amd64 >"$d/include/config/kernel.release"
	: >"$d/Module.symvers"
	for l in "$@"; do echo "$l"; done >"$d/.config"
}

# refused WANT ARGS...: the script fails, its last line is one error
# naming WANT, and the headers directory (the last argument) is unchanged.
refused() {
	local want=$1 out rc dir=${*: -1} before after
	shift
	before=$(find "$dir" -newer "$work/stamp" 2>/dev/null | wc -l)
	out=$("$script" --work "$work/gen" "$@" 2>&1)
	rc=$?
	after=$(find "$dir" -newer "$work/stamp" 2>/dev/null | wc -l)
	[ "$rc" != 0 ] || { t_diag "it succeeded: $out"; return 1; }
	case $out in
	"debian-rust-headers: error: "*"$want"*) ;;
	*) t_diag "want one error about '$want', got: $out"; return 1 ;;
	esac
	[ "$(printf '%s\n' "$out" | wc -l)" = 1 ] || { t_diag "more than one line: $out"; return 1; }
	[ "$before" = "$after" ] && [ ! -e "$dir/rust" ] ||
		{ t_diag "$dir changed"; return 1; }
}

mkdir -p "$work"
touch "$work/stamp"
fake "$work/h1" CONFIG_RUST=y
t_check "${cases[0]}" refused "belongs to no Debian package" "$work/h1"
fake "$work/h2" "# CONFIG_RUST is not set"
t_check "${cases[1]}" refused "no CONFIG_RUST" --pkg-version 7.3.4-1~bpo13+1 "$work/h2"
if [ -n "$deb" ]; then
	ver=$(dpkg-query -W -f '${Version}' linux-source-7.3 2>/dev/null)
	fake "$work/h3"
	cp "$deb/.config" "$work/h3/.config"
	t_check "${cases[2]}" refused "linux-source-7.3 is '$ver', the headers are 7.3.99-1" \
		--pkg-version 7.3.99-1 "$work/h3"
	fake "$work/h4"
	sed 's/^CONFIG_RUSTC_VERSION_TEXT=.*/CONFIG_RUSTC_VERSION_TEXT="rustc 1.99.0"/' "$deb/.config" >"$work/h4/.config"
	cc=$(sed -n 's/^CONFIG_CC_VERSION_TEXT="\([^ ]*\).*/\1/p' "$deb/.config")
	mkdir -p "$work/bin"
	cat >"$work/bin/$cc" <<-EOF
		#!/bin/bash
		out=\$("$(command -v "$cc")" "\$@") || exit
		printf '%s\\n' "\${out%%\$'\\n'*}"
		sleep 0.5
		printf '%s\\n' "\$out"
	EOF
	chmod +x "$work/bin/$cc"
	PATH=$work/bin:$PATH t_check "${cases[3]}" refused "built with rustc 'rustc 1.99.0'" \
		--pkg-version "$ver" "$work/h4"
	t_check "${cases[4]}" "$script" --check "$deb"
else
	for i in 2 3 4; do
		t_skip "${cases[i]}" "no Debian headers in the guest (the debian target has not run)"
	done
fi
t_done
