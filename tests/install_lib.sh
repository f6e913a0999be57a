# SPDX-License-Identifier: GPL-2.0
#
# Helpers of the tests that install rust_loop as the module loop
# (tests/install_test.sh: `make install`; tests/dkms_test.sh: `make dkms`)
# and ask modprobe and the kernel which loop driver they get. Sourced after
# tests/lib.sh.

# The loaded loop module's parameters.
p=/sys/module/loop/parameters

# The running kernel's release and module tree, the kernel's own loop
# module in it (loop.ko.xz on Debian's kernel), and the `options loop`
# line both tests write (3 devices rather than 8 make every load cheaper).
sysread /proc/sys/kernel/osrelease
rel=$v
tree=/lib/modules/$rel
kloop=
for f in "$tree"/kernel/drivers/block/loop.ko*; do
	[ -e "$f" ] && kloop=kernel/drivers/block/${f##*/}
done
opts="max_loop=3 max_part=7 hw_queue_depth=64"

# has_line FILE LINE: FILE has the line LINE.
has_line() {
	local l
	while IFS= read -r l; do
		[ "$l" = "$2" ] && return 0
	done <"$1"
	return 1
}

# Which loop driver is loaded: rust (rust_loop as loop), c (loop.ko),
# none; rust_loop (the development build) counts as other.
loaded() {
	if [ -d /sys/module/rust_loop ]; then
		echo other
	elif [ ! -d /sys/module/loop ]; then
		echo none
	elif [ -e $p/nr_hw_queues ]; then
		echo rust
	else
		echo c
	fi
}

# is_rust_loop: /proc/modules (what lsmod shows) lists loop, and it is
# rust_loop: it has rust_loop's own parameter, nr_hw_queues, which loop.ko
# does not.
is_rust_loop() {
	local name rest
	while read -r name rest; do
		[ "$name" = loop ] && [ "$(loaded)" = rust ] && return 0
	done </proc/modules
	return 1
}

unload_loop() {
	local i
	for ((i = 0; i < 50; i++)); do
		[ -d /sys/module/loop ] || return 0
		modprobe -r loop 2>/dev/null && return 0
		nap 0.1
	done
	return 1
}

# dry_run: what modprobe loop would do, "insmod PATH [OPTIONS]".
dry_run() {
	local out
	out=$(modprobe -n -v loop 2>&1)
	echo "${out%"${out##*[! ]}"}"
}

# params: max_loop, max_part and hw_queue_depth of the loaded loop.
params() {
	local f
	for f in max_loop max_part hw_queue_depth; do
		sysread $p/$f
		printf '%s ' "$v"
	done
}

# unload_all: no loop driver loaded, neither the rust_loop.ko under test
# (tests/run.sh has just loaded it, with nothing bound) nor a loop.
unload_all() {
	local i
	for ((i = 0; i < 50; i++)); do
		[ -d /sys/module/rust_loop ] || break
		rmmod rust_loop 2>/dev/null || nap 0.1
	done
	unload_loop
}

# fs_type DIR: the type of the file system mounted last on DIR (by its
# physical path: /usr/lib/modules in /proc/mounts for /lib/modules on a
# merged /usr).
fs_type() {
	local dir type= mnt t
	dir=$(cd -P "$1" && pwd)
	while read -r _ mnt t _; do
		[ "$mnt" = "$dir" ] && type=$t
	done </proc/mounts
	echo "$type"
}
