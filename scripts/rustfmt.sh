#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Formats (or with --check, checks) the module's Rust sources with the
# chroot's rustfmt and the kernel tree's .rustfmt.toml, as the kernel's own
# `make rustfmt` / `make rustfmtcheck` do for in-tree code.

. "$(dirname "$0")/lib.sh"

"$RL_TOP/scripts/build-kernel.sh" test >/dev/null
cd "$RL_TOP"
mapfile -t files < <(git ls-files '*.rs' 2>/dev/null || ls ./*.rs)
rl_in_chroot rustfmt --config-path "$RL_KSRC/.rustfmt.toml" "$@" "${files[@]/#/$RL_TOP/}"
