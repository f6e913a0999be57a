#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Builds perf from the kernel source's tools/perf inside the chroot, with
# only what `perf record` and `perf report --stdio` need (no Python, Perl,
# libtraceevent, BPF, DWARF unwinding or TUI): kernel symbols come from the
# guest's /proc/kallsyms, which names rust_loop's functions too. The
# binary is copied to OUTDIR/perf, where the guest finds it in the project
# directory (make bench BENCH_PERF=...; Documentation/benchmark.rst).
#
#   scripts/build-perf.sh OUTDIR
#
# The build (about 3 minutes on two cores) is cached in
# $RUST_LOOP_CACHE/perf-<kernel source version>.

. "$(dirname "$0")/lib.sh"

out=${1:?usage: $0 OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
"$RL_TOP/scripts/build-kernel.sh" release >/dev/null
cache=$RL_CACHE/perf-${RL_KSRC##*/}
if [ ! -x "$cache/perf" ]; then
	rm -rf "$cache.tmp"
	mkdir -p "$cache.tmp"
	rl_log "building perf in $cache (log: $cache.log)"
	RL_BIND="$cache.tmp" rl_in_chroot make -C "$RL_KSRC/tools/perf" O="$cache.tmp" \
		-j"$(nproc)" WERROR=0 NO_LIBTRACEEVENT=1 NO_LIBPYTHON=1 NO_LIBPERL=1 \
		NO_SLANG=1 NO_LIBNUMA=1 NO_LIBBPF=1 BUILD_BPF_SKEL=0 NO_JEVENTS=1 \
		NO_LIBUNWIND=1 NO_LIBDW=1 NO_LIBCRYPTO=1 NO_LIBCAP=1 NO_DEMANGLE=1 \
		NO_BABELTRACE2=1 NO_LIBPFM4=1 NO_SDT=1 NO_LIBLLVM=1 NO_CAPSTONE=1 \
		NO_JVMTI=1 NO_SHELLCHECK=1 >"$cache.log" 2>&1 ||
		rl_die "building perf failed (log: $cache.log)"
	rm -rf "$cache"
	mv "$cache.tmp" "$cache"
fi
install -m 0755 "$cache/perf" "$out/perf"
