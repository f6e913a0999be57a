#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# What the kernel says of the loaded driver's origin and signature (issue
# 24, item 5): rust_loop is an out-of-tree, unsigned module, so its
# /sys/module/<name>/taint is "O", and "OE" on a kernel that checks module
# signatures (CONFIG_MODULE_SIG, as Debian's: the parameter
# module.sig_enforce exists there), where it loads because the signature
# is not enforced; its signer is empty. The kernel's
# own loop.ko taints nothing; on Debian's kernel it is signed (a signer),
# on the project's kernels not.

. "$(dirname "$0")/lib.sh"

m=$(drv_name)
sig=
[ -e /sys/module/module/parameters/sig_enforce ] && sig=1
sysread "/sys/module/$m/taint"
taint=$v
if [ "${LOOP_DRIVER:-rust}" = c ]; then
	want=
	ko=$(modinfo -n loop 2>/dev/null)
else
	want=O${sig:+E}
	ko=$RUST_LOOP_KO
fi
t_diag "/sys/module/$m/taint: '$taint'; signatures checked: ${sig:-no}"
t_check "the module's taint flags are '$want'" test "$taint" = "$want"

signer=$(modinfo -F signer "$ko" 2>/dev/null)
t_diag "modinfo -F signer $ko: '$signer'"
if [ "${LOOP_DRIVER:-rust}" = c ] && [ -n "$sig" ]; then
	t_check "loop.ko is signed (Debian: by the key of the kernel's build)" test -n "$signer"
else
	t_check "the module has no signer" test -z "$signer"
fi

t_done
