#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# `make bench`: builds what is missing, boots the release kernel (no
# sanitizers) and runs tests/bench.sh in the guest, which compares
# rust_loop.ko with loop.ko under fio in interleaved rounds. Not a test.
#
# Environment: BENCH_ROUNDS (default 5), BENCH_RUNTIME (seconds per fio
# run, default 8).

. "$(dirname "$0")/lib.sh"

"$RL_TOP/scripts/chroot.sh" >&2
"$RL_TOP/scripts/build-kernel.sh" release >/dev/null
"$RL_TOP/scripts/build-module.sh" release "$RL_TOP/build/release" >/dev/null ||
	rl_die "building rust_loop.ko failed"
exec "$RL_TOP/scripts/qemu.sh" --profile release --timeout 7200 -- \
	"tests/bench.sh -r ${BENCH_ROUNDS:-5} -t ${BENCH_RUNTIME:-8} -k $RL_TOP/build/release/rust_loop.ko"
