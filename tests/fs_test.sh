#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Real tools on the driver under test, once with buffered and once with
# direct (losetup --direct-io=on) backing I/O:
#
#  - fio random writes with crc32c verify headers, read back and checked
#    through the device: two jobs, each on its own region, with psync at
#    queue depth 1 (4 KiB blocks) and libaio at depth 16 (512-byte and
#    128 KiB blocks) on O_DIRECT descriptors (one fio run, one result per
#    job), and buffered 4 KiB writes verified after the device's page
#    cache was dropped;
#  - mkfs.ext4 on a loop device, a tree of files copied onto it, umount,
#    fsck.ext4 -fn clean, detach, attach again with losetup, mount, every
#    file's checksum intact and the tree equal to its source, fsck again.
#
# Sizes are kept small for the KASAN + TCG test kernel (a quarter of them
# in the quick tier, more in the slow one); the quick tier also copies no
# documentation directories into the tree and makes the file system round
# trip only on the direct device. The "# ... s" lines say where the time
# goes.

. "$(dirname "$0")/lib.sh"

mnt=$T_SCRATCH/mnt-fs
work=$T_SCRATCH/fs-test
devs=()

cleanup() {
	local d
	mountpoint -q "$mnt" && umount "$mnt"
	for d in "${devs[@]}"; do
		losetup -d "$d" 2>/dev/null
	done
	rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$mnt" "$work"

# attach MODE FILE: losetup -f --show, buffered or direct; prints the device.
attach() {
	local opt=
	[ "$1" = direct ] && opt=--direct-io=on
	losetup -f --show $opt "$2"
}

# dio_is MODE DEV: the device's backing I/O mode is MODE.
dio_is() {
	local want=0 got
	[ "$1" = direct ] && want=1
	got=$(cat "/sys/block/${2#/dev/}/loop/dio" 2>/dev/null)
	[ "$got" = "$want" ] && return 0
	t_diag "$2: loop/dio is '$got', want $want"
	return 1
}

# run_fio LABEL ARGS...: run one fio job (ARGS); its output is shown only
# when it fails.
run_fio() {
	local label=$1 log=$work/fio.log t0=$SECONDS
	shift
	# No verify state files: fio would leave them in the current
	# directory, the project's.
	if fio --verify_state_save=0 "$@" >"$log" 2>&1; then
		t_diag "fio $label: $((SECONDS - t0)) s"
		return 0
	fi
	t_diag "fio $label failed:" "$(tail -40 "$log")"
	return 1
}

# fio_verify DEV JOB...: one fio run (run_fio) of the JOBs ("ENGINE DEPTH
# BS SIZE"), one after the other (stonewall), each two jobs writing their
# own SIZE region of DEV in random order with O_DIRECT, then reading it
# back and checking every block's crc32c and offset. One fio for all of
# them: fio links some sixty libraries and costs the debug kernel 0.65 s
# before it does anything. Sets verified[JOB]=1 for each JOB that fio
# reports done with no error.
declare -A verified
fio_verify() {
	local dev=$1 job args=() line err engine depth bs size
	shift
	verified=()
	for job in "$@"; do
		read -r engine depth bs size <<<"$job"
		args+=(--name="$engine-qd$depth-bs$bs" --new_group --stonewall
			--ioengine="$engine" --iodepth="$depth" --bs="$bs"
			--size="$size" --offset_increment="$size")
	done
	run_fio "$# O_DIRECT verify jobs" --filename="$dev" --direct=1 \
		--rw=randwrite --numjobs=2 --verify=crc32c --verify_fatal=1 \
		--do_verify=1 --group_reporting "${args[@]}"
	for job in "$@"; do
		read -r engine depth bs size <<<"$job"
		err=none
		while IFS= read -r line; do
			case $line in
			"$engine-qd$depth-bs$bs: (groupid="*)
				err=${line#*err=}
				err=${err%%:*}
				err=${err// /}
				;;
			esac
		done <"$work/fio.log"
		if [ "$err" = 0 ]; then
			verified[$job]=1
		else
			t_diag "fio $engine-qd$depth-bs$bs: err=$err"
		fi
	done
}

# fio_buffered_verify DEV SIZE: the same through the device's page cache:
# write and fsync, drop the device's cache, then a verify-only pass whose
# reads have to go through the driver.
fio_buffered_verify() {
	local dev=$1 size=$2
	local args=(--name=verify --filename="$dev" --ioengine=psync
		--direct=0 --bs=4k --size="$size" --numjobs=2
		--offset_increment="$size" --rw=randwrite --verify=crc32c
		--verify_fatal=1 --group_reporting)

	run_fio "psync buffered write" "${args[@]}" --do_verify=0 --end_fsync=1 &&
		blockdev --flushbufs "$dev" &&
		run_fio "psync buffered verify" "${args[@]}" --verify_only
}

# fio_cases MODE: the fio checks, on one device of MODE.
fio_cases() {
	local mode=$1 img=$work/fio-$1.img dev
	truncate -s 64M "$img"
	if ! dev=$(attach "$mode" "$img"); then
		t_fail "$mode: losetup for fio"
		return
	fi
	devs+=("$dev")
	t_check "$mode: losetup sets up $mode backing I/O" dio_is "$mode" "$dev"
	# The three O_DIRECT jobs in one fio, each its own result.
	local jobs=("psync 1 4k $(tier 512k 2M 16M)" "libaio 16 512 $(tier 128k 512k 4M)"
		"libaio 16 128k $(tier 4M 16M 28M)") job engine depth bs
	fio_verify "$dev" "${jobs[@]}"
	for job in "${jobs[@]}"; do
		read -r engine depth bs _ <<<"$job"
		if [ -n "${verified[$job]:-}" ]; then
			t_ok "$mode: fio $engine qd$depth bs$bs crc32c verify"
		else
			t_fail "$mode: fio $engine qd$depth bs$bs crc32c verify"
		fi
	done
	t_check "$mode: fio buffered bs4k crc32c verify after cache drop" \
		fio_buffered_verify "$dev" "$(tier 512k 2M 16M)"
	t_check "$mode: losetup -d after fio" losetup -d "$dev"
	rm -f "$img"
}

# make_tree DIR: generated files of many sizes (0 bytes to 512 KiB, one
# sparse), nested directories, a symlink, a hard link, and a few copied
# documentation directories with their permissions. One perl process
# writes the files: a process per file costs too much under KASAN + TCG.
make_tree() {
	local d=$1
	mkdir -p "$d/gen/a/b/c" "$d/gen/empty" || return 1
	perl -e '
		my $d = shift;
		open(my $r, "<:raw", "/dev/urandom") or die "urandom: $!";
		sub put {
			my ($path, $n) = @_;
			my $data = "";
			read($r, $data, $n) == $n or die "read: $!" if $n;
			open(my $f, ">:raw", $path) or die "$path: $!";
			print $f $data;
			close($f) or die "$path: $!";
		}
		for my $i (1 .. 100) {
			my $n = ($i * 7919) % 32768;
			$n *= 16 if $i % 10 == 0;
			put("$d/gen/f$i", $n);
		}
		put("$d/gen/a/b/c/g$_", $_ * 4096 + $_) for 1 .. 20;
		put("$d/gen/zero", 0);
	' "$d" || return 1
	dd if=/dev/urandom of="$d/gen/sparse" bs=4k count=3 seek=1000 \
		status=none || return 1
	ln -s f1 "$d/gen/link" && ln "$d/gen/f2" "$d/gen/hard" || return 1
	# The quick tier copies no documentation directories.
	[ "$(tier 0 1 1)" = 0 ] && return 0
	cp -a /usr/share/doc/util-linux /usr/share/doc/e2fsprogs \
		/usr/share/doc/fio "$d/"
}

# fsck_clean DEV WHEN: fsck.ext4 -fn finds nothing to fix.
fsck_clean() {
	fsck.ext4 -fn "$1" >"$work/fsck.log" 2>&1 && return 0
	t_diag "fsck.ext4 -fn $1 ($2):" "$(cat "$work/fsck.log")"
	return 1
}

# fs_roundtrip MODE: mkfs, copy, check, detach, attach, check.
fs_roundtrip() {
	local mode=$1 img=$work/fs-$1.img dev t0=$SECONDS
	truncate -s 128M "$img"
	dev=$(attach "$mode" "$img") || { t_diag "losetup failed"; return 1; }
	devs+=("$dev")
	dio_is "$mode" "$dev" || return 1
	mkfs.ext4 -q -F "$dev" || { t_diag "mkfs.ext4 $dev failed"; return 1; }
	mount "$dev" "$mnt" || { t_diag "mount $dev failed"; return 1; }
	cp -a "$work/src/." "$mnt/" || { t_diag "cp -a failed"; return 1; }
	umount "$mnt" || { t_diag "umount failed"; return 1; }
	fsck_clean "$dev" "after umount" || return 1
	losetup -d "$dev" || { t_diag "losetup -d $dev failed"; return 1; }
	t_diag "$mode: mkfs, copy, fsck, detach: $((SECONDS - t0)) s"

	dev=$(attach "$mode" "$img") || { t_diag "losetup again failed"; return 1; }
	devs+=("$dev")
	dio_is "$mode" "$dev" || return 1
	mount "$dev" "$mnt" || { t_diag "mount $dev failed"; return 1; }
	if ! (cd "$mnt" && sha256sum --quiet -c "$work/sums") >"$work/sum.log" 2>&1; then
		t_diag "checksums after re-attach:" "$(head -20 "$work/sum.log")"
		return 1
	fi
	if ! diff -r --no-dereference -x lost+found "$work/src" "$mnt" \
		>"$work/diff.log" 2>&1; then
		t_diag "tree differs after re-attach:" "$(head -20 "$work/diff.log")"
		return 1
	fi
	umount "$mnt" || { t_diag "umount failed"; return 1; }
	fsck_clean "$dev" "after re-attach" || return 1
	losetup -d "$dev" || { t_diag "losetup -d $dev failed"; return 1; }
	rm -f "$img"
	t_diag "$mode: file system round trip: $((SECONDS - t0)) s"
}

t0=$SECONDS
if ! make_tree "$work/src"; then
	t_fail "making the source tree"
	t_done
fi
(cd "$work/src" && find . -type f -print0 | sort -z | xargs -0 sha256sum) \
	>"$work/sums"
t_diag "source tree: $(wc -l <"$work/sums") files, $(du -sh "$work/src" | cut -f1), $((SECONDS - t0)) s"

for mode in buffered direct; do
	fio_cases "$mode"
	# The quick tier makes the file system round trip only once (direct).
	if [ "$mode" = buffered ] && [ "$(tier 0 1 1)" = 0 ]; then
		t_skip "$mode: mkfs, fsck, re-attach, checksums" "quick tier"
		continue
	fi
	t_check "$mode: mkfs, fsck, re-attach, checksums" fs_roundtrip "$mode"
done
t_diag "total $((SECONDS - t0)) s"
t_done
