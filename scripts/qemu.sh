#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Boots the guest: QEMU (from the chroot) on a kernel built by
# scripts/build-kernel.sh, with the chroot as the read-only 9p root, the
# project directory shared read-write at its host path, the kernel's module
# tree at /lib/modules and a scratch disk. scripts/guest-init is PID 1.
#
#   scripts/qemu.sh [options] [--] [COMMAND]
#     --profile test|release|debian  which kernel (default release)
#     --insmod PATH           insmod this module before COMMAND
#     --timeout SECONDS       kill the guest after this long (default none)
#     --disk FILE             FILE as a second disk, /dev/vdb, kept after
#                             the boot (tests/crash.sh's persistent disk)
#     --append ARGS           more kernel command line (make check QUICK=1:
#                             kmemleak=off)
#   With COMMAND: runs it in the guest with bash, prints its output and exits
#   with its exit status. Without: an interactive shell on the serial console.
#
# Environment: KVM=1 uses KVM instead of TCG (never chosen automatically:
# on the machines this project is developed on, /dev/kvm belongs to another
# hypervisor and a normal guest hangs at "Decompressing Linux..."),
# QEMU_MEM (default 2G), QEMU_SMP (default 2), QEMU_ICOUNT=1 (TCG in
# instruction-count mode, `-icount shift=0,sleep=off`: the guest's clock
# advances by one nanosecond per executed instruction and jumps over idle
# time, so timings in guest time are deterministic whatever the host's load;
# the vCPUs then share one host thread. make bench uses it; not with KVM).
#
# Every boot's serial log is kept in $RUST_LOOP_CACHE/runs/<id>/serial.log;
# its path is printed when the guest fails. RL_RUN_DIR, if set, names the
# run directory to use (make check reads the serial log from it).

. "$(dirname "$0")/lib.sh"

profile=release insmod= timeout=0 disk= kargs=
while [ $# -gt 0 ]; do
	case "$1" in
	--profile) profile=$2; shift 2 ;;
	--insmod) insmod=$2; shift 2 ;;
	--timeout) timeout=$2; shift 2 ;;
	--disk) disk=$2; shift 2 ;;
	--append) kargs=$2; shift 2 ;;
	--) shift; break ;;
	-*) rl_die "unknown option $1" ;;
	*) break ;;
	esac
done
cmd="$*"

kdir=$(rl_kernel_dir "$profile")
[ -f "$kdir/.complete" ] || kdir=$(rl_kernel "$profile")
krel=$(cat "$kdir/kernelrelease")
# A kernel built here has its image and module tree in its build
# directory; Debian's (scripts/build-debian.sh) has them where the
# packages put them, and an initramfs that loads the modules its root
# needs.
if [ "$profile" = debian ]; then
	kimage=$kdir/root/usr/lib/modules/$krel/vmlinuz
	kmodules=$kdir/root/usr/lib/modules
	initrd=(-initrd "$kdir/initrd.img")
else
	kimage=$kdir/arch/x86/boot/bzImage
	kmodules=$kdir/modroot/lib/modules
	initrd=()
fi

run=${RL_RUN_DIR:-$RL_CACHE/runs/$(date +%Y%m%d-%H%M%S)-$$}
mkdir -p "$run"
rm -f "$run/status"
log=$run/serial.log
# Keep the 20 newest run directories, and any younger than 4 hours: a
# make check that boots many guests must not lose the run directory of one
# still running. Guests booted side by side (make check) prune at the same
# moment: a directory another one has just removed makes ls exit 2, which
# must not stop this boot.
{ ls -1dt "$RL_CACHE"/runs/*/ 2>/dev/null || true; } | tail -n +21 |
	while read -r old; do
		[ -n "$(find "$old" -maxdepth 0 -mmin +240 2>/dev/null)" ] && echo "$old"
	done | xargs -r rm -rf 2>/dev/null || true

# PID 1 lives in the chroot, the guest's root; refresh it from the project.
# The guest mounts over these directories of its read-only root.
# Guests booted side by side on a new chroot (make check on a fresh
# machine) all find it missing: each writes its own copy and renames it
# into place, since two `install`s of one path race ("File exists").
mkdir -p "$RL_CHROOT/scratch" "$RL_CHROOT/lib/modules" "$RL_CHROOT$RL_TOP"
if ! cmp -s "$RL_TOP/scripts/guest-init" "$RL_CHROOT/sbin/rust-loop-init"; then
	install -m 0755 "$RL_TOP/scripts/guest-init" "$RL_CHROOT/sbin/.rust-loop-init.$$"
	mv -f "$RL_CHROOT/sbin/.rust-loop-init.$$" "$RL_CHROOT/sbin/rust-loop-init"
fi

# Each boot gets its own sparse scratch disk, so guests can run side by
# side: a copy of an ext4 template made once per chroot (its mkfs.ext4),
# whose inode tables and journal are already zeroed (holes in the file), so
# neither mkfs in the guest (1.5 s of every boot of the debug kernel) nor
# ext4's lazy initialisation thread costs the guest anything. A template
# that cannot be made leaves the disk blank, and the guest formats it.
scratch=$run/scratch.img
rm -f "$scratch"
tmpl=$RL_CACHE/scratch-${RL_CHROOT##*/}.img
if [ ! -f "$tmpl" ]; then
	rm -f "$tmpl.$$"
	truncate -s 8G "$tmpl.$$"
	if rl_in_chroot mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$tmpl.$$" &&
		fallocate --dig-holes "$tmpl.$$"; then
		mv -f "$tmpl.$$" "$tmpl"
	else
		rm -f "$tmpl.$$"
	fi
fi
cp --sparse=always "$tmpl" "$scratch" 2>/dev/null || { rm -f "$scratch"; truncate -s 8G "$scratch"; }

append="console=ttyS0 root=root rootfstype=9p rootflags=trans=virtio,version=9p2000.L,msize=524288,cache=loose ro"
append+=" init=/sbin/rust-loop-init panic=-1 rl.project=$RL_TOP"
# No check that the timer interrupt arrives within a few ms of boot, as on
# any virtual machine: under TCG on a loaded host (three guests on two
# cores in make check) it can miss and panic ("IO-APIC + timer doesn't
# work").
append+=" no_timer_check"
[ -n "$kargs" ] && append+=" $kargs"
[ -n "$insmod" ] && append+=" rl.insmod=$insmod"

accel="-accel tcg -cpu max"
[ "${KVM:-0}" = 1 ] && accel="-accel kvm -cpu host"
if [ "${QEMU_ICOUNT:-0}" = 1 ]; then
	[ "${KVM:-0}" = 1 ] && rl_die "QEMU_ICOUNT=1 needs TCG, not KVM=1"
	accel+=" -icount shift=0,sleep=off"
fi

qemu=(qemu-system-x86_64 $accel -machine q35 -smp "${QEMU_SMP:-2}" -m "${QEMU_MEM:-2G}"
	-nodefaults -no-reboot -display none
	-kernel "$kimage" "${initrd[@]}"
	-fsdev "local,id=root,path=/mnt/guest-root,security_model=none,readonly=on"
	-device virtio-9p-pci,fsdev=root,mount_tag=root
	-virtfs "local,path=$RL_TOP,mount_tag=project,security_model=none"
	-virtfs "local,path=$kmodules,mount_tag=modules,security_model=none,readonly=on"
	-virtfs "local,path=$run,mount_tag=run,security_model=none"
	-drive "file=$scratch,if=virtio,format=raw,cache=unsafe,discard=unmap"
	-device virtio-serial-pci)
# The host does not crash, so cache=unsafe loses nothing a guest wrote to
# the disk: a crashed guest loses only what it had not written.
[ -n "$disk" ] && qemu+=(-drive "file=$disk,if=virtio,format=raw,cache=unsafe")

if [ -z "$cmd" ]; then
	append+=" rl.shell=1"
	qemu+=(-chardev "stdio,id=s0,mux=on,signal=off,logfile=$log"
		-serial chardev:s0 -mon chardev=s0,mode=readline)
	echo "rust_loop: booting the $profile kernel $krel; serial log $log" >&2
	echo "rust_loop: exit the shell (or press Ctrl-A x) to power off" >&2
else
	printf '%s\n' "$cmd" >"$run/cmd"
	qemu+=(-serial "file:$log" -monitor none
		-chardev stdio,id=out,signal=off -device virtconsole,chardev=out)
fi
qemu+=(-append "$append")

# A guest that never started init failed in QEMU or in its own boot,
# before the module or the test ran, so it says nothing about the driver:
# it is booted once more, and its serial log kept beside the new one.
# Seen on this machine under TCG: the test kernel stopping at
# "clocksource: Switched to clocksource tsc-early" (once in a few hundred
# boots, on a loaded host), and QEMU aborting early in a boot with
# "iotlb_to_section: Assertion `section_index < d->map.sections_nb'
# failed" (once, four guests booting at the same moment). A watchdog
# kills a boot that has not started init in boot_limit seconds; the
# slowest start of init seen here is 90 s of guest time.
boot_limit=${RL_BOOT_LIMIT:-300}
started_init() { grep -q '^\[[ 0-9.]*\] Run /' "$log" 2>/dev/null; }
for attempt in 1 2; do
	rm -f "$run/boot-hung"
	watchdog=
	if [ -n "$cmd" ] && [ "$boot_limit" -gt 0 ]; then
		(
			for ((i = 0; i < boot_limit; i++)); do
				sleep 1
				started_init && exit 0
			done
			touch "$run/boot-hung"
			pkill -TERM -f "^qemu-system-x86_64 .*file=$scratch," || true
		) >/dev/null 2>&1 &
		watchdog=$!
	fi
	qstatus=0
	rl_in_chroot timeout --foreground -k 10 "${timeout}" "${qemu[@]}" || qstatus=$?
	if [ -n "$watchdog" ]; then
		kill "$watchdog" 2>/dev/null || true
		wait "$watchdog" 2>/dev/null || true
	fi
	[ -n "$cmd" ] && [ ! -f "$run/status" ] && ! started_init || break
	if [ -f "$run/boot-hung" ]; then
		rl_log "the guest kernel did not start init in ${boot_limit} s: a hung boot"
	else
		rl_log "QEMU ended (status $qstatus) before the guest kernel started init"
	fi
	[ "$attempt" = 2 ] && break
	mv "$log" "$log.failed-boot"
	rl_log "booting it once more; the failed boot's serial log: $log.failed-boot"
	truncate -s 0 "$scratch" && truncate -s 8G "$scratch"
done

rm -f "$scratch"
if [ ! -f "$run/status" ]; then
	rl_log "the guest did not finish (qemu status ${qstatus:-0}); serial log: $log"
	tail -30 "$log" >&2
	exit 124
fi
status=$(cat "$run/status")
[ "$status" = 0 ] || rl_log "the guest command exited with $status; serial log: $log"
exit "$status"
