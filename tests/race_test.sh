#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Races between util-linux tools on the driver under test. Each stress runs
# several background workers for DUR seconds (20; 3 in the quick tier,
# 120 in the slow one), then checks that every
# worker finished (no hang: a worker still running 90 s after its end is
# killed and its kernel stack shown), that no operation failed other than
# in the ways loop.c lets it fail in that race, and that the end state is
# consistent: the device can be set up and used again, and after
# `losetup -D` nothing is bound (`losetup -a` empty, no loop/ directory in
# sysfs). tests/run.sh then checks that the driver unloads, and make check
# that the kernel log has no splat.
#
#  a) 4 workers: losetup -f --show FILE / losetup -d of that device, over a
#     shared pool of 4 files; the device handed out is bound to the
#     worker's file (sysfs backing_file) until the worker detaches it.
#  b) open/close of /dev/loopN (dd of one sector, and the shell's own
#     open/read/close) while a worker attaches and detaches that device.
#     Reads see the backing file's first bytes or nothing (unbound); an
#     open fails only with ENXIO (device being cleared, lo_open); an attach
#     fails only with EBUSY (still bound until the last opener closes, as
#     LOOP_CLR_FD only sets autoclear while others hold it open) or ENXIO.
#  c) cat /sys/block/loopN/loop/backing_file (and the shell's read) while a
#     worker attaches and detaches it with two files: it shows one of the
#     two, nothing (between clearing the file and removing the group, as in
#     __loop_clr_fd), or fails with ENOENT/ENODEV (group removed).
#  d) blockdev --rereadpt and partx -u of a -P device while a worker
#     detaches and re-attaches it with losetup -P; afterwards a final
#     attach shows both partitions with their sizes.
#  e) losetup -c (LOOP_SET_CAPACITY, the backing file alternately grown
#     and shrunk) and --direct-io=on/off toggles while readers read and
#     check data, buffered and O_DIRECT: every read succeeds with the right
#     data, every -c and --direct-io succeeds.

. "$(dirname "$0")/lib.sh"

work=$T_SCRATCH/race-test
DUR=${RACE_DUR:-$(tier 3 20 120)}

# ----------------------------------------------------------------- worker
#
# A worker is a subshell of this script started by start(): it loops until
# the stress's common end ($end_us, microseconds of EPOCHREALTIME), counts
# its operations in $work/NAME.count, the outcomes loop.c allows in that
# race in $work/NAME.notes, and anything else in $work/NAME.err, and says
# it has ended on the fifo $work/wd, which finish() waits on.

declare -A notes=()
nops=0
nerr=0

# w_more: the stress is not over, or this worker has not begun (each
# worker makes at least one attempt, however late it started).
w_more() {
	[ -n "${w_begun:-}" ] || { w_begun=1 && return 0; }
	((${EPOCHREALTIME/./} < end_us))
}

w_err() {
	nerr=$((nerr + 1))
	[ $nerr -le 20 ] && echo "$wname: $*" >>"$work/$wname.err"
}

w_note() { notes[$1]=$((${notes[$1]:-0} + 1)); }

w_end() {
	local k
	echo "$nops" >"$work/$wname.count"
	for k in "${!notes[@]}"; do
		echo "${notes[$k]}x $k"
	done >"$work/$wname.notes"
	echo "$wname" >&"$wd_fd"
	exit 0
}

# (a) losetup -f --show FILE; check; losetup -d.
w_find_detach() {
	local i=$1 f dev o
	shift
	local files=("$@")
	while w_more; do
		f=${files[(nops + i) % ${#files[@]}]}
		if ! dev=$(losetup -f --show "$f" 2>&1); then
			w_err "losetup -f --show $f: $dev"
			continue
		fi
		case $dev in
		/dev/loop[0-9]*) ;;
		*) w_err "losetup -f --show $f printed '$dev'"; continue ;;
		esac
		sysread "/sys/block/${dev#/dev/}/loop/backing_file"
		[ "$v" = "$f" ] || w_err "$dev just set up: backing_file '$v', want $f"
		o=$(losetup -d "$dev" 2>&1) || w_err "losetup -d $dev: $o"
		nops=$((nops + 1))
	done
}

# attach_or_note DEV FILE [OPTS...]: losetup [OPTS] DEV FILE; returns 0 if
# bound, 1 (noted) on EBUSY/ENXIO, 1 (error) otherwise.
attach_or_note() {
	local dev=$1 f=$2 o
	shift 2
	o=$(losetup "$@" "$dev" "$f" 2>&1) && [ -z "$o" ] && return 0
	case $o in
	*": failed to set up loop device: Device or resource busy") w_note "attach: EBUSY" ;;
	*": failed to set up loop device: No such device or address") w_note "attach: ENXIO" ;;
	*) w_err "losetup $* $dev $f: $o" ;;
	esac
	return 1
}

# w_attach_detach DEV BOUND OPTS FILE...: attach DEV (losetup OPTS DEV
# FILE, the files in turn) and detach it, alternately; BOUND=1 if DEV is
# bound (by the caller) when the worker starts. The worker's own detach of
# the device it bound must succeed; for (b), (c), (d).
w_attach_detach() {
	local dev=$1 mine=$2 opts=$3 o n=0
	shift 3
	local files=("$@")
	while w_more; do
		if [ "$mine" = 1 ]; then
			o=$(losetup -d "$dev" 2>&1) || w_err "losetup -d $dev (bound by this worker): $o"
			mine=0
			w_note "detached"
		elif attach_or_note "$dev" "${files[n++ % ${#files[@]}]}" $opts; then
			mine=1
			w_note "attached"
		fi
		nops=$((nops + 1))
	done
}

# (b) dd of one sector.
w_dd() {
	local dev=$1 o
	while w_more; do
		if ! o=$(dd if="$dev" of=/dev/null count=1 status=none 2>&1); then
			case $o in
			"dd: failed to open '$dev': No such device or address") w_note "open: ENXIO" ;;
			*) w_err "dd if=$dev: $o" ;;
			esac
		fi
		nops=$((nops + 1))
	done
}

# (b) the shell's own open, read of 64 bytes, close: the bytes are the
# backing file's first 64 (bound) or none (unbound, size 0).
w_open_read() {
	local dev=$1 want=$2 fd x e
	while w_more; do
		nops=$((nops + 1))
		if ! { exec {fd}<"$dev"; } 2>"$work/$wname.open"; then
			e=
			read -r e <"$work/$wname.open"
			case $e in
			*"$dev: No such device or address") w_note "open: ENXIO" ;;
			*) w_err "open $dev: $e" ;;
			esac
			continue
		fi
		x=
		read -r -N 64 -u "$fd" x
		exec {fd}<&-
		case $x in
		"") w_note "read: empty" ;;
		"$want") w_note "read: data" ;;
		*) w_err "read '$x' from $dev, want '$want' or nothing" ;;
		esac
	done
}

# (c) cat of loop/backing_file.
w_cat_backing() {
	local attr=$1 f1=$2 f2=$3 o
	while w_more; do
		nops=$((nops + 1))
		if o=$(cat "$attr" 2>&1); then
			case $o in
			"$f1" | "$f2") w_note "cat: a backing file" ;;
			"") w_note "cat: empty" ;;
			*) w_err "cat $attr: '$o'" ;;
			esac
		else
			case $o in
			"cat: $attr: No such file or directory") w_note "cat: ENOENT" ;;
			"cat: $attr: No such device") w_note "cat: ENODEV" ;;
			# The first read(2) got the value, the next one found the
			# group being removed (kernfs): loop.ko does the same.
			"$f1"$'\n'"cat: $attr: No such device" | \
				"$f2"$'\n'"cat: $attr: No such device")
				w_note "cat: a backing file, then ENODEV" ;;
			*) w_err "cat $attr failed: $o" ;;
			esac
		fi
	done
}

# (c) the same with the shell's own open and read, many times faster than
# cat: bash reports a failed open or read(2) on stderr, kept in a file and
# sorted out at the end.
w_read_backing() {
	local attr=$1 f1=$2 f2=$3 efd line
	exec {efd}>"$work/$wname.stderr"
	while w_more; do
		nops=$((nops + 1))
		v=
		IFS= read -r v 2>&$efd <"$attr"
		case $v in
		"$f1" | "$f2") w_note "read: a backing file" ;;
		"") w_note "read: nothing (or failed)" ;;
		*) w_err "read $attr: '$v'" ;;
		esac
	done
	exec {efd}>&-
	while IFS= read -r line; do
		case $line in
		*": $attr: No such file or directory") w_note "open: ENOENT" ;;
		# kernfs: the attribute was found but is being removed
		# (kernfs_get_active() failed), in loop.ko as here.
		*": $attr: No such device") w_note "open: ENODEV" ;;
		*": read: read error: 0: No such device") w_note "read: ENODEV" ;;
		*) w_err "$line" ;;
		esac
	done <"$work/$wname.stderr"
}

# (d) blockdev --rereadpt DEV.
w_rereadpt() {
	local dev=$1 o
	while w_more; do
		nops=$((nops + 1))
		if o=$(blockdev --rereadpt "$dev" 2>&1); then
			w_note "rereadpt: ok"
			continue
		fi
		case $o in
		# Unbound: GD_SUPPRESS_PART_SCAN, no partition scan allowed.
		"blockdev: ioctl error on BLKRRPART: Invalid argument") w_note "rereadpt: EINVAL" ;;
		# A partition open (partx) or the disk claimed exclusively.
		"blockdev: ioctl error on BLKRRPART: Device or resource busy") w_note "rereadpt: EBUSY" ;;
		"blockdev: cannot open $dev: No such device or address") w_note "rereadpt: open ENXIO" ;;
		*) w_err "blockdev --rereadpt $dev: $o" ;;
		esac
	done
}

# (d) partx -u DEV.
w_partx() {
	local dev=$1 o
	while w_more; do
		nops=$((nops + 1))
		if o=$(partx -u "$dev" 2>&1); then
			w_note "partx: ok"
			continue
		fi
		case $o in
		# Unbound (size 0) or cleared while reading: the read fails, and
		# partx reports the I/O error again when closing stdout.
		"partx: $dev: failed to read partition table" | \
			"partx: $dev: failed to read partition table"$'\n'"partx: write failed: Input/output error")
			w_note "partx: no table (unbound)" ;;
		"partx: cannot open $dev: No such device or address") w_note "partx: open ENXIO" ;;
		"partx: $dev: error updating partition "[0-9]*) w_note "partx: update raced" ;;
		"partx: $dev: error deleting partition"*) w_note "partx: delete raced" ;;
		"partx: $dev: error adding partition"*) w_note "partx: add raced" ;;
		*) w_err "partx -u $dev: $o" ;;
		esac
	done
}

# (e) truncate the backing file to 16 or 32 MiB, losetup -c.
w_capacity() {
	local dev=$1 f=$2 o
	while w_more; do
		truncate -s $((16 << (nops % 2)))M "$f" || w_err "truncate $f failed"
		o=$(losetup -c "$dev" 2>&1) || w_err "losetup -c $dev: $o"
		nops=$((nops + 1))
	done
}

# (e) --direct-io=on / off.
w_dio_toggle() {
	local dev=$1 o m
	while w_more; do
		m=on
		[ $((nops % 2)) = 1 ] && m=off
		o=$(losetup --direct-io=$m "$dev" 2>&1) || w_err "losetup --direct-io=$m $dev: $o"
		nops=$((nops + 1))
	done
}

# (e) read 64 KiB at a varying offset of the first 16 MiB (which never
# changes), buffered or O_DIRECT, and compare with the backing file.
w_read_check() {
	local dev=$1 f=$2 mode=$3 off o
	while w_more; do
		off=$(((nops * 2654435761 % 255) * 65536))
		if [ "$mode" = direct ]; then
			o=$({ dd if="$dev" bs=65536 skip=$((off / 65536)) count=1 iflag=direct status=none |
				cmp -n 65536 -i 0:$off - "$f"; } 2>&1)
		else
			o=$(cmp -n 65536 -i $off:$off "$dev" "$f" 2>&1)
		fi
		[ $? = 0 ] && [ -z "$o" ] || w_err "$mode read of $dev at $off: $o"
		nops=$((nops + 1))
	done
}

# ------------------------------------------------------------------- main

declare -A wpid=()
fails=()

# start NAME WORKER ARGS...: one worker in the background, until $end_us
# (set by begin when the stress's first worker starts). A forked subshell,
# not this script run again: every exec costs the debug kernel under TCG
# about 50 ms, and the workers of a stress start within milliseconds of
# each other.
start() {
	local name=$1
	shift
	rm -f "$work/$name".{err,count,notes}
	[ ${#wpid[@]} = 0 ] && begin
	(
		trap - EXIT
		wname=$name
		"$@"
		w_end
	) &
	wpid[$name]=$!
}

# begin: the stress's workers run DUR seconds from now.
begin() { end_us=$((${EPOCHREALTIME/./} + DUR * 1000000)); }

# descendants PID: PID's descendants, deepest last.
descendants() {
	local c
	for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
		echo "$c"
		descendants "$c"
	done
}

# finish: wait for every worker (woken by each one's end on the fifo), at
# most 90 s past the stress's end: a worker still running then is hung;
# its kernel stacks are shown and it is killed. Then check each one's
# errors and count. Adds to $fails.
finish() {
	local name deadline=$((SECONDS + DUR + 90)) alive st p pids line
	while :; do
		alive=
		for name in "${!wpid[@]}"; do
			kill -0 "${wpid[$name]}" 2>/dev/null && alive=1
		done
		[ -z "$alive" ] && break
		if [ $SECONDS -ge $deadline ]; then
			for name in "${!wpid[@]}"; do
				kill -0 "${wpid[$name]}" 2>/dev/null || continue
				fails+=("worker $name hung (still running 90 s after the stress's end)")
				pids=$(descendants "${wpid[$name]}")
				for p in $pids; do
					t_diag "hung: $p $(tr '\0' ' ' </proc/$p/cmdline 2>/dev/null)" \
						"$(cat /proc/$p/stack 2>/dev/null)"
				done
				kill -9 "${wpid[$name]}" $pids 2>/dev/null
			done
			break
		fi
		read -r -t 1 -u "$wd_fd"
	done
	for name in "${!wpid[@]}"; do
		wait "${wpid[$name]}"
		st=$?
		case $st in
		0) ;;
		137) ;; # killed as hung, reported above
		*) fails+=("worker $name exited with status $st") ;;
		esac
		if [ -s "$work/$name.err" ]; then
			fails+=("$(<"$work/$name.err")")
		fi
		p=0
		[ -r "$work/$name.count" ] && read -r p <"$work/$name.count"
		[ "${p:-0}" = 0 ] && fails+=("worker $name did no operation")
		t_diag "$name: $p ops"
		if [ -r "$work/$name.notes" ]; then
			while IFS= read -r line; do t_diag "    $line"; done <"$work/$name.notes"
		fi
	done
	# The fifo holds the ends of workers already counted.
	while read -r -t 0 -u "$wd_fd" && read -r -u "$wd_fd"; do :; done
	wpid=()
}

# expect LABEL EXPECTED ACTUAL
expect() {
	[ "$2" = "$3" ] || fails+=("$1: want '$2', got '$3'")
}

# end_state: detach everything; nothing is bound.
end_state() {
	local o
	o=$(timeout -k 5 60 losetup -D 2>&1) || fails+=("losetup -D: $o")
	o=$(timeout -k 5 60 losetup -a 2>&1)
	expect "losetup -a after losetup -D" "" "$o"
	expect "bound devices after losetup -D" "" "$(bound)"
}

# report NAME DESCRIPTION: one TAP line from $fails.
report() {
	if [ ${#fails[@]} = 0 ]; then
		t_ok "$1: $2"
	else
		t_diag "${fails[@]}"
		t_fail "$1: $2"
	fi
	fails=()
}

stress_a() {
	local i f files=() o
	for i in 1 2 3 4; do
		files+=("$work/a$i.img")
	done
	truncate -s 4M "${files[@]}"
	for i in 0 1 2 3; do
		start "a$i" w_find_detach "$i" "${files[@]}"
	done
	finish
	# Still usable: every file attached at once, on four distinct devices.
	o=$(for f in "${files[@]}"; do timeout -k 5 60 losetup -f --show "$f"; done 2>&1)
	expect "devices set up after the stress" 4 "$(sort -u <<<"$o" | grep -c '^/dev/loop')"
	end_state
}

stress_b() {
	local dev=/dev/loop3 f=$work/b.img text
	text=$(printf 'race_test (b): first bytes of the backing file, 64 chars ---%05d' 0)
	text=${text:0:64}
	printf '%s' "$text" >"$f"
	truncate -s 4M "$f"
	start b_attach w_attach_detach "$dev" 0 "" "$f"
	start b_dd1 w_dd "$dev"
	start b_dd2 w_dd "$dev"
	start b_shell w_open_read "$dev" "$text"
	finish
	# Still usable: attach, read the text back, detach.
	o=$(timeout -k 5 60 losetup -d "$dev" 2>&1)
	o=$(timeout -k 5 60 losetup "$dev" "$f" 2>&1) || fails+=("losetup $dev after the stress: $o")
	expect "first bytes of $dev after the stress" "$text" \
		"$(timeout -k 5 60 dd if="$dev" bs=64 count=1 status=none 2>&1)"
	end_state
}

stress_c() {
	local dev=/dev/loop4 f1=$work/c1.img f2=$work/c2.img
	local attr=/sys/block/loop4/loop/backing_file v
	truncate -s 4M "$f1" "$f2"
	start c_attach w_attach_detach "$dev" 0 "" "$f1" "$f2"
	start c_cat1 w_cat_backing "$attr" "$f1" "$f2"
	start c_cat2 w_cat_backing "$attr" "$f1" "$f2"
	start c_shell w_read_backing "$attr" "$f1" "$f2"
	finish
	o=$(timeout -k 5 60 losetup -d "$dev" 2>&1)
	o=$(timeout -k 5 60 losetup "$dev" "$f2" 2>&1) || fails+=("losetup $dev after the stress: $o")
	sysread "$attr"
	expect "$attr after the stress" "$f2" "$v"
	end_state
	sysread "$attr"
	expect "$attr after losetup -D" "<absent>" "$v"
}

stress_d() {
	local dev=/dev/loop5 f=$work/d.img o
	truncate -s 32M "$f"
	printf 'label: dos\nstart=2048, size=8192, type=83\nstart=10240, size=16384, type=83\n' |
		sfdisk -q "$f" || fails+=("sfdisk $f failed")
	o=$(timeout -k 5 60 losetup -P "$dev" "$f" 2>&1) || fails+=("losetup -P $dev: $o")
	start d_attach w_attach_detach "$dev" 1 -P "$f"
	start d_rereadpt w_rereadpt "$dev"
	start d_partx w_partx "$dev"
	finish
	o=$(timeout -k 5 60 losetup -d "$dev" 2>&1)
	o=$(timeout -k 5 60 losetup -P "$dev" "$f" 2>&1) || fails+=("losetup -P $dev after the stress: $o")
	sysread /sys/block/loop5/loop5p1/size
	expect "loop5p1 size after the stress" 8192 "$v"
	sysread /sys/block/loop5/loop5p2/size
	expect "loop5p2 size after the stress" 16384 "$v"
	o=$(timeout -k 5 60 blockdev --rereadpt "$dev" 2>&1) || fails+=("blockdev --rereadpt $dev after the stress: $o")
	sysread /sys/block/loop5/loop5p2/size
	expect "loop5p2 size after a rescan" 16384 "$v"
	end_state
	expect "partitions after losetup -D" "" "$(ls -d /sys/block/loop5/loop5p* /dev/loop5p* 2>/dev/null)"
}

stress_e() {
	local dev=/dev/loop6 f=$work/e.img o
	head -c 16M /dev/urandom >"$f"
	o=$(timeout -k 5 60 losetup "$dev" "$f" 2>&1) || fails+=("losetup $dev: $o")
	start e_capacity w_capacity "$dev" "$f"
	start e_dio w_dio_toggle "$dev"
	start e_read_buffered w_read_check "$dev" "$f" buffered
	start e_read_direct w_read_check "$dev" "$f" direct
	finish
	# The last word wins: size follows the file, dio follows the toggle.
	truncate -s 24M "$f"
	o=$(timeout -k 5 60 losetup -c "$dev" 2>&1) || fails+=("losetup -c $dev after the stress: $o")
	sysread /sys/block/loop6/size
	expect "loop6 size after the stress and -c" 49152 "$v"
	o=$(timeout -k 5 60 losetup --direct-io=on "$dev" 2>&1) || fails+=("--direct-io=on: $o")
	sysread /sys/block/loop6/loop/dio
	expect "loop6 dio after --direct-io=on" 1 "$v"
	o=$(timeout -k 5 60 losetup --direct-io=off "$dev" 2>&1) || fails+=("--direct-io=off: $o")
	sysread /sys/block/loop6/loop/dio
	expect "loop6 dio after --direct-io=off" 0 "$v"
	timeout -k 5 60 cmp -n 16777216 "$dev" "$f" >/dev/null 2>&1 ||
		fails+=("$dev does not read back the first 16 MiB of its file after the stress")
	end_state
}

stresses=(
	"a|4 workers: losetup -f --show / -d over a shared pool of files"
	"b|open/close (dd, shell) of /dev/loop3 while it is attached and detached"
	"c|cat loop/backing_file while the device is attached and detached"
	"d|blockdev --rereadpt and partx -u while losetup -d / -P re-attach"
	"e|losetup -c and --direct-io toggles while reads are checked"
)

t0=$SECONDS
rm -rf "$work"
if ! mkdir -p "$work" || ! mkfifo "$work/wd" || ! exec {wd_fd}<>"$work/wd"; then
	t_fail "work directory set up"
	t_done
fi
trap 'rm -rf "$work"' EXIT

for s in "${stresses[@]}"; do
	name=${s%%|*}
	fails=()
	t=$SECONDS
	expect "devices bound before the stress" "" "$(bound)"
	"stress_$name"
	t_diag "stress $name: $((SECONDS - t)) s"
	report "$name" "${s#*|}: no error, no hang, clean end state"
done
t_diag "total $((SECONDS - t0)) s"
t_done
