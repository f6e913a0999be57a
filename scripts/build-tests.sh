#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Builds the C kselftests (tests/Makefile) inside the chroot, against the
# kernel source's kselftest_harness.h and the test kernel's uapi headers.
#
#   scripts/build-tests.sh OUTDIR [TARGET]
#
# TARGET is a target of tests/Makefile: all (default), or native (no
# 32-bit copies).

. "$(dirname "$0")/lib.sh"

out=${1:?usage: $0 OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
kdir=$("$RL_TOP/scripts/build-kernel.sh" test)
rl_in_chroot make -s -j"$(nproc)" -C "$RL_TOP/tests" OUT="$out" \
	KSFT="$RL_KSRC/tools/testing/selftests" UAPI="$kdir/uapi/include" "${2:-all}"
