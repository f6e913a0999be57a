// SPDX-License-Identifier: GPL-2.0
/*
 * An ioctl fuzzer of the driver under test (issue 12, item 1): several
 * threads issue random operations on /dev/loop-control and on a handful of
 * loop devices (loop0..loop5 bound and unbound, loop6..loop12 added and
 * removed), with random and hostile arguments, for a time or a number of
 * calls chosen by tier:
 *
 * - every loop ioctl (LOOP_SET_FD, LOOP_CLR_FD, LOOP_SET_STATUS,
 *   LOOP_GET_STATUS, LOOP_SET_STATUS64, LOOP_GET_STATUS64, LOOP_CHANGE_FD,
 *   LOOP_SET_CAPACITY, LOOP_SET_DIRECT_IO, LOOP_SET_BLOCK_SIZE,
 *   LOOP_CONFIGURE, LOOP_CTL_ADD, LOOP_CTL_REMOVE, LOOP_CTL_GET_FREE) and
 *   random command numbers of the 'L' range 0x4C00..0x4CFF;
 * - huge, negative and unaligned offsets and size limits, odd block sizes,
 *   random flags and encryption fields, unterminated lo_file_name, bad user
 *   pointers (NULL, 1, an unmapped page, a structure straddling into one, a
 *   read-only page, a kernel address);
 * - as backing "files": regular files (read-write, read-only, O_DIRECT,
 *   empty, shorter than a sector), a directory, a pipe, a socket,
 *   /dev/null, an O_PATH fd, /dev/loop-control, loop devices (the device
 *   itself too), bad fd numbers, and fds another thread closes mid-call;
 * - interleaved with open/close of the devices (O_EXCL, O_DIRECT,
 *   read-only), buffered and O_DIRECT pread/pwrite, fsync, BLKDISCARD,
 *   BLKZEROOUT, BLKRRPART, BLKFLSBUF, BLKGETSIZE64 and reads of the loop
 *   sysfs attributes.
 *
 * It passes if nothing crashes or hangs (a thread that makes no progress
 * for HANG_SECONDS is a failure, with its kernel stack printed, rather than
 * a stuck guest), no call fails with an errno outside the set loop.c can
 * return for it (allowed[] below), and the end state is clean: every
 * device detaches after LOOP_CLR_FD and every device above loop5 is
 * removed. The errno histogram of every operation is printed as TAP
 * diagnostics, to compare the two drivers.
 *
 * The seed is printed; FUZZ_SEED=N repeats a run (as far as thread
 * scheduling allows), FUZZ_SECONDS=S or FUZZ_CALLS=N set its length,
 * FUZZ_THREADS=N (default 4) and FUZZ_DEVS=N (loop0..loop<N-1>, default 6)
 * how many threads and devices, FUZZ_TRACE=NAME prints every failed call
 * of one operation (a name of the histogram).
 * Tiers (tier_count()): 3 s quick, 30 s normal, 10^6 calls full; the
 * 32-bit build (fuzz_test-m32, tests/Makefile) runs half as long.
 */
#include "common.h"

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <linux/fs.h>
#include <linux/loop.h>

#include "kselftest_harness.h"

#define MAX_THREADS	16
#define FUZZ_DEVS	6	/* loop0..loop5: bound, unbound, opened */
#define ADD_MIN		6	/* loop6..loop12: added and removed */
#define ADD_MAX		12
#define DEV_SLOTS	12	/* shared open loop device fds */
#define VOL_SLOTS	8	/* shared backing fds, closed under others' feet */
#define NFILES		4	/* backing files of 1, 2, 4 and 8 MiB */
#define MAX_ERRNO	134
/* No progress of a thread for this long is a hang. */
#define HANG_SECONDS	90
/* Devices must detach and be removed within this long after the run. */
#define SETTLE_SECONDS	30

enum op {
	OP_SET_FD, OP_CLR_FD, OP_SET_STATUS, OP_GET_STATUS, OP_SET_STATUS64,
	OP_GET_STATUS64, OP_CHANGE_FD, OP_SET_CAPACITY, OP_SET_DIRECT_IO,
	OP_SET_BLOCK_SIZE, OP_CONFIGURE, OP_CTL_ADD, OP_CTL_REMOVE,
	OP_CTL_GET_FREE, OP_RAND_DEV, OP_RAND_CTL, OP_OPEN, OP_CLOSE,
	OP_VOL_OPEN, OP_PREAD, OP_PWRITE, OP_FSYNC, OP_DISCARD, OP_ZEROOUT,
	OP_RRPART, OP_FLSBUF, OP_GETSIZE64, OP_SYSFS, NOPS
};

static const char *const op_names[NOPS] = {
	"LOOP_SET_FD", "LOOP_CLR_FD", "LOOP_SET_STATUS", "LOOP_GET_STATUS",
	"LOOP_SET_STATUS64", "LOOP_GET_STATUS64", "LOOP_CHANGE_FD",
	"LOOP_SET_CAPACITY", "LOOP_SET_DIRECT_IO", "LOOP_SET_BLOCK_SIZE",
	"LOOP_CONFIGURE", "LOOP_CTL_ADD", "LOOP_CTL_REMOVE",
	"LOOP_CTL_GET_FREE", "random-dev-cmd", "random-ctl-cmd", "open",
	"close", "open-backing", "pread", "pwrite", "fsync", "BLKDISCARD",
	"BLKZEROOUT", "BLKRRPART", "BLKFLSBUF", "BLKGETSIZE64", "sysfs-read",
};

/* Relative frequency of each operation. */
static const int op_weight[NOPS] = {
	[OP_SET_FD] = 6, [OP_CLR_FD] = 3, [OP_SET_STATUS] = 3,
	[OP_GET_STATUS] = 3, [OP_SET_STATUS64] = 5, [OP_GET_STATUS64] = 3,
	[OP_CHANGE_FD] = 3, [OP_SET_CAPACITY] = 3, [OP_SET_DIRECT_IO] = 3,
	[OP_SET_BLOCK_SIZE] = 4, [OP_CONFIGURE] = 6, [OP_CTL_ADD] = 2,
	[OP_CTL_REMOVE] = 2, [OP_CTL_GET_FREE] = 2, [OP_RAND_DEV] = 3,
	[OP_RAND_CTL] = 1, [OP_OPEN] = 6, [OP_CLOSE] = 4, [OP_VOL_OPEN] = 3,
	[OP_PREAD] = 6, [OP_PWRITE] = 6, [OP_FSYNC] = 2, [OP_DISCARD] = 2,
	[OP_ZEROOUT] = 2, [OP_RRPART] = 1, [OP_FLSBUF] = 2,
	[OP_GETSIZE64] = 2, [OP_SYSFS] = 3,
};

/*
 * The errnos each operation may fail with, from loop.c (Linux 7.3) and the
 * block layer, and what loop.ko answered in runs of this fuzzer; the
 * reasons, for the less obvious ones:
 * - EBADF: a bad, closed or O_PATH fd (fget()), a device as its own backing
 *   file (loop_validate_file()); ENOTTY: the fd under a stale fd number
 *   is no block device any more (another thread closed and reused it), or
 *   an unknown command of a 32-bit caller (UNKNOWN_LOOP_IOCTL_ERR);
 *   ESPIPE: the same for pread/pwrite, the number now naming a file
 *   without positioned I/O (once in 10^6 calls on loop.ko);
 * - EINVAL: a state or argument check, an unknown command
 *   (lo_simple_ioctl()); ENXIO: an unbound device, or one being deleted;
 *   EBUSY: a bound device, an exclusive opener (bd_prepare_to_claim()),
 *   an open device to remove; EOVERFLOW: an offset beyond 2^63 or not
 *   fitting loop_info; EFAULT: a bad user pointer;
 * - EPERM: a write to a read-only device (blkdev_write_iter());
 *   ENOSPC: a write at or beyond the end of the device;
 * - EIO: I/O through a device whose backing device (a loop device in a
 *   chain) went away, or an I/O error of the backing file;
 * - EOPNOTSUPP: BLKDISCARD on a device without discard support;
 * - ENOENT: the node of a removed device; ENODEV: LOOP_CTL_REMOVE of an
 *   absent index; EEXIST: LOOP_CTL_ADD of a present one; ENOSYS: an
 *   unknown loop-control command (loop_control_ioctl()).
 */
static bool allowed[NOPS][MAX_ERRNO + 1];

#define ALLOW(op, ...)							\
	do {								\
		static const int _e[] = { __VA_ARGS__ };		\
		for (size_t _k = 0; _k < sizeof(_e) / sizeof(_e[0]); _k++) \
			allowed[op][_e[_k]] = true;			\
	} while (0)
#define E_FD		EBADF, ENOTTY
#define E_STATE		EINVAL, ENXIO, EBUSY
#define E_IO		EIO, ENXIO, EINVAL, EPERM, ENOSPC

static void init_allowed(void)
{
	for (int op = 0; op < NOPS; op++)
		if (op != OP_VOL_OPEN)
			ALLOW(op, E_FD, E_STATE);
	ALLOW(OP_SET_STATUS, EFAULT, EPERM, EOVERFLOW);
	ALLOW(OP_SET_STATUS64, EFAULT, EPERM, EOVERFLOW);
	ALLOW(OP_GET_STATUS, EFAULT, EOVERFLOW);
	ALLOW(OP_GET_STATUS64, EFAULT);
	ALLOW(OP_CONFIGURE, EFAULT, EOVERFLOW);
	ALLOW(OP_SET_BLOCK_SIZE, EPERM);
	ALLOW(OP_SET_CAPACITY, EPERM);
	ALLOW(OP_SET_DIRECT_IO, EPERM);
	ALLOW(OP_CTL_ADD, EEXIST);
	ALLOW(OP_CTL_REMOVE, ENODEV);
	ALLOW(OP_RAND_DEV, EFAULT, EPERM, EOVERFLOW);
	ALLOW(OP_RAND_CTL, EEXIST, ENODEV, ENOSYS);
	ALLOW(OP_OPEN, ENOENT, EROFS);
	ALLOW(OP_PREAD, E_IO, ESPIPE);
	ALLOW(OP_PWRITE, E_IO, ESPIPE);
	ALLOW(OP_FSYNC, E_IO);
	ALLOW(OP_DISCARD, E_IO, EOPNOTSUPP);
	ALLOW(OP_ZEROOUT, E_IO, EOPNOTSUPP);
	ALLOW(OP_RRPART, E_IO);
	ALLOW(OP_FLSBUF, E_IO);
	ALLOW(OP_SYSFS, ENOENT, ENODEV);
}

/* What the threads share with the watching parent process. */
struct shared {
	unsigned long long counts[NOPS][MAX_ERRNO + 1];	/* [0]: success */
	unsigned long long calls;
	unsigned long long unexpected;
	char first_unexpected[8][160];
	/* Per thread: the time of its last completed call and its current op. */
	long long progress_ns[MAX_THREADS];
	int cur_op[MAX_THREADS];
	int done;
};

static struct shared *sh;

/* Fds the threads share; a slot's fd is closed by whoever swaps it out. */
static int dev_slot[DEV_SLOTS];
static int vol_slot[VOL_SLOTS];

/* Fds that stay open for the whole run. */
static int ctl_fd;
static int file_fd[NFILES], ro_fd, direct_fd, empty_fd, tiny_fd, wo_fd;
static int dir_fd, pipe_fd[2], sock_fd[2], null_fd, path_fd, event_fd;
static char file_path[NFILES][4096], empty_path[4096], tiny_path[4096];

/* Hostile user pointers. */
static char *unmapped, *straddle, *ro_page;

static volatile int stop;
/* FUZZ_THREADS, FUZZ_DEVS: threads, and devices among loop0..loop5. */
static int nthreads = 4, ndevs = FUZZ_DEVS;
/* FUZZ_TRACE=NAME: print every failure of the operation NAME. */
static int trace_op = -1;
static unsigned long long max_calls;

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* splitmix64: each thread has its own stream. */
static uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t below(uint64_t *s, uint64_t n)
{
	return n ? rnd(s) % n : 0;
}

static bool chance(uint64_t *s, int one_in)
{
	return below(s, one_in) == 0;
}

#define PICK(s, arr) ((arr)[below(s, sizeof(arr) / sizeof((arr)[0]))])

static void record(int tid, enum op op, long ret, int err, const char *what)
{
	int e = ret < 0 ? err : 0;

	if (e < 0 || e > MAX_ERRNO)
		e = MAX_ERRNO;
	__atomic_fetch_add(&sh->counts[op][e], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&sh->calls, 1, __ATOMIC_RELAXED);
	sh->progress_ns[tid] = now_ns();
	if (e && (int)op == trace_op)
		printf("# trace: %s(%s): %s\n", op_names[op], what,
		       strerrorname_np(e));
	if (e && !allowed[op][e]) {
		unsigned long long n = __atomic_fetch_add(&sh->unexpected, 1,
							  __ATOMIC_RELAXED);

		if (n < 8)
			snprintf(sh->first_unexpected[n],
				 sizeof(sh->first_unexpected[n]), "%s(%s): %s",
				 op_names[op], what, strerror(e));
	}
}

/* An offset or a size limit: mostly sane, often hostile. */
static uint64_t hostile_u64(uint64_t *s)
{
	static const uint64_t v[] = {
		0, 0, 0, 1, 511, 512, 4096, 1 << 20, 4 << 20, (8 << 20) + 4096,
		0x7fffffffULL, 0x80000000ULL, 0xffffffffULL, 0x100000000ULL,
		1ULL << 62, 0x7fffffffffffffffULL, 0x8000000000000000ULL,
		~0ULL, -512ULL, -4096ULL,
	};

	return chance(s, 8) ? rnd(s) : PICK(s, v);
}

static unsigned long hostile_ptr(uint64_t *s, void *good)
{
	switch (below(s, 24)) {
	case 0: return 0;
	case 1: return 1;
	case 2: return (unsigned long)unmapped;
	case 3: return (unsigned long)straddle;
	case 4: return (unsigned long)ro_page;
	case 5: return sizeof(long) == 8 ? 0xffff888000000000UL : 0xc0000000UL;
	case 6: return ~0UL;
	default: return (unsigned long)good;
	}
}

static int hostile_flags(uint64_t *s)
{
	if (chance(s, 6))
		return (int)rnd(s);
	return rnd(s) & (LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR |
			 LO_FLAGS_PARTSCAN | LO_FLAGS_DIRECT_IO);
}

static void hostile_name(uint64_t *s, unsigned char *name, size_t len)
{
	switch (below(s, 4)) {
	case 0:
		memset(name, 0, len);
		break;
	case 1:	/* unterminated garbage */
		for (size_t i = 0; i < len; i++)
			name[i] = 1 + below(s, 255);
		break;
	default:
		snprintf((char *)name, len, "fuzz-%llx",
			 (unsigned long long)rnd(s));
	}
}

static void hostile_info64(uint64_t *s, struct loop_info64 *i)
{
	memset(i, 0, sizeof(*i));
	if (chance(s, 8)) {
		for (size_t k = 0; k < sizeof(*i); k++)
			((unsigned char *)i)[k] = rnd(s);
		return;
	}
	if (chance(s, 3)) {
		/* Sane, so that some calls get through to the state changes. */
		i->lo_offset = below(s, 3) * 4096;
		i->lo_sizelimit = below(s, 2) * (512 << below(s, 12));
		i->lo_flags = hostile_flags(s) & 0x1f;
		hostile_name(s, i->lo_file_name, sizeof(i->lo_file_name));
		return;
	}
	i->lo_offset = hostile_u64(s);
	i->lo_sizelimit = chance(s, 2) ? 0 : hostile_u64(s);
	i->lo_flags = hostile_flags(s);
	if (chance(s, 10))
		i->lo_encrypt_type = below(s, 20);
	if (chance(s, 10))
		i->lo_encrypt_key_size = below(s, 40);
	hostile_name(s, i->lo_file_name, sizeof(i->lo_file_name));
	if (chance(s, 4))
		hostile_name(s, i->lo_crypt_name, sizeof(i->lo_crypt_name));
	i->lo_number = rnd(s);
	i->lo_device = rnd(s);
	i->lo_inode = rnd(s);
}

static void hostile_info(uint64_t *s, struct loop_info *i)
{
	memset(i, 0, sizeof(*i));
	if (chance(s, 8)) {
		for (size_t k = 0; k < sizeof(*i); k++)
			((unsigned char *)i)[k] = rnd(s);
		return;
	}
	i->lo_offset = (int)hostile_u64(s);
	i->lo_flags = hostile_flags(s);
	if (chance(s, 10))
		i->lo_encrypt_type = below(s, 20);
	if (chance(s, 10))
		i->lo_encrypt_key_size = below(s, 40);
	hostile_name(s, (unsigned char *)i->lo_name, sizeof(i->lo_name));
	i->lo_number = rnd(s);
}

static unsigned long hostile_block_size(uint64_t *s)
{
	static const unsigned long v[] = {
		0, 1, 2, 256, 511, 512, 512, 513, 1000, 1024, 2048, 4096,
		4096, 4097, 8192, 16384, 65536, 1 << 20, (unsigned long)-1,
		(unsigned long)-512,
	};

	if (chance(s, 10))
		return rnd(s);
	if (sizeof(long) == 8 && chance(s, 20))
		return (unsigned long)(0x100000000ULL | 4096);
	return PICK(s, v);
}

/* A shared fd: a loop device, opened and closed by the threads. */
static int any_dev_fd(uint64_t *s)
{
	return __atomic_load_n(&dev_slot[below(s, DEV_SLOTS)], __ATOMIC_RELAXED);
}

/* A "backing file" for LOOP_SET_FD, LOOP_CONFIGURE and LOOP_CHANGE_FD. */
static int hostile_backing_fd(uint64_t *s, int self)
{
	switch (below(s, 24)) {
	case 0: case 1: case 2: case 3: case 4: case 5:
		return file_fd[below(s, NFILES)];
	case 6: return ro_fd;
	case 7: return direct_fd;
	case 8: return empty_fd;
	case 9: return tiny_fd;
	case 10: return wo_fd;
	case 11: return dir_fd;
	case 12: return pipe_fd[below(s, 2)];
	case 13: return sock_fd[0];
	case 14: return null_fd;
	case 15: return path_fd;
	case 16: return ctl_fd;
	case 17: return event_fd;
	case 18: return self;
	case 19: case 20: return any_dev_fd(s);
	case 21: return (int)below(s, 2) ? -1 : 100000 + (int)below(s, 100);
	default:
		return __atomic_load_n(&vol_slot[below(s, VOL_SLOTS)],
					__ATOMIC_RELAXED);
	}
}

/* Put @fd into a random slot of @slots, closing what it replaces. */
static void slot_put(int *slots, int n, uint64_t *s, int fd)
{
	int old = __atomic_exchange_n(&slots[below(s, n)], fd, __ATOMIC_ACQ_REL);

	if (old >= 0)
		close(old);
}

static int dev_index(uint64_t *s)
{
	if (chance(s, 5))
		return ADD_MIN + below(s, ADD_MAX - ADD_MIN + 1);
	return below(s, ndevs);
}

/* A fresh fd of a random loop device, or -1. */
static int open_dev(uint64_t *s, long *ret, int *err, char *what, size_t wlen)
{
	static const int acc[] = { O_RDWR, O_RDWR, O_RDONLY, O_WRONLY };
	int idx = dev_index(s), flags = PICK(s, acc);
	char p[64];
	int fd;

	if (chance(s, 8))
		flags |= O_EXCL;
	if (chance(s, 4))
		flags |= O_DIRECT;
	if (chance(s, 8))
		flags |= O_NONBLOCK;
	snprintf(p, sizeof(p), "/dev/loop%d", idx);
	snprintf(what, wlen, "loop%d, 0%o", idx, flags);
	fd = open(p, flags | O_CLOEXEC);
	*ret = fd;
	*err = errno;
	return fd;
}

struct thread {
	pthread_t th;
	int id;
	uint64_t seed;
	char *buf;	/* 64 KiB + 4 KiB, page aligned */
};

static void one_op(struct thread *t, enum op op)
{
	uint64_t *s = &t->seed;
	char what[160] = "";
	long ret = 0;
	int err = 0, fd, tmp = -1;
	unsigned long arg;
	struct loop_info64 i64;
	struct loop_info i32;
	struct loop_config cfg;
	uint64_t range[2];

	/* Most operations act on a shared fd, some on a private one. */
	fd = any_dev_fd(s);
	if (fd < 0 || chance(s, 6)) {
		long r;
		int e;

		tmp = open_dev(s, &r, &e, what, sizeof(what));
		fd = tmp;
		if (tmp < 0) {
			/* A failed open is an open result of its own. */
			record(t->id, OP_OPEN, r, e, what);
			return;
		}
	}
	snprintf(what, sizeof(what), "fd %d", fd);

	switch (op) {
	case OP_SET_FD:
		arg = hostile_backing_fd(s, fd);
		ret = ioctl(fd, LOOP_SET_FD, arg);
		break;
	case OP_CLR_FD:
		ret = ioctl(fd, LOOP_CLR_FD, 0);
		break;
	case OP_SET_STATUS:
		hostile_info(s, &i32);
		ret = ioctl(fd, LOOP_SET_STATUS, hostile_ptr(s, &i32));
		break;
	case OP_GET_STATUS:
		ret = ioctl(fd, LOOP_GET_STATUS, hostile_ptr(s, &i32));
		break;
	case OP_SET_STATUS64:
		hostile_info64(s, &i64);
		ret = ioctl(fd, LOOP_SET_STATUS64, hostile_ptr(s, &i64));
		break;
	case OP_GET_STATUS64:
		ret = ioctl(fd, LOOP_GET_STATUS64, hostile_ptr(s, &i64));
		break;
	case OP_CHANGE_FD:
		ret = ioctl(fd, LOOP_CHANGE_FD, hostile_backing_fd(s, fd));
		break;
	case OP_SET_CAPACITY:
		ret = ioctl(fd, LOOP_SET_CAPACITY, chance(s, 4) ? rnd(s) : 0);
		break;
	case OP_SET_DIRECT_IO:
		arg = chance(s, 5) ? rnd(s) : below(s, 2);
		ret = ioctl(fd, LOOP_SET_DIRECT_IO, arg);
		break;
	case OP_SET_BLOCK_SIZE:
		arg = hostile_block_size(s);
		snprintf(what, sizeof(what), "fd %d, %lu", fd, arg);
		ret = ioctl(fd, LOOP_SET_BLOCK_SIZE, arg);
		break;
	case OP_CONFIGURE:
		memset(&cfg, 0, sizeof(cfg));
		cfg.fd = chance(s, 3) ? file_fd[below(s, NFILES)] :
					hostile_backing_fd(s, fd);
		cfg.block_size = chance(s, 3) ? 512U << below(s, 4) :
						hostile_block_size(s);
		hostile_info64(s, &cfg.info);
		if (chance(s, 2))
			cfg.info.lo_flags &= LOOP_CONFIGURE_SETTABLE_FLAGS;
		if (chance(s, 10))
			cfg.__reserved[below(s, 8)] = rnd(s);
		snprintf(what, sizeof(what), "fd %d, file %u, bs %u, flags %#x",
			 fd, cfg.fd, cfg.block_size, cfg.info.lo_flags);
		ret = ioctl(fd, LOOP_CONFIGURE, hostile_ptr(s, &cfg));
		break;
	case OP_CTL_ADD:
	case OP_CTL_REMOVE:
	case OP_CTL_GET_FREE: {
		static const unsigned long cmds[] = {
			LOOP_CTL_ADD, LOOP_CTL_REMOVE, LOOP_CTL_GET_FREE
		};
		long idx;

		if (chance(s, 8))
			idx = -1;
		else if (op == OP_CTL_REMOVE && chance(s, 10))
			idx = below(s, ndevs);	/* busy, or gone */
		else
			idx = ADD_MIN + below(s, ADD_MAX - ADD_MIN + 1);
		snprintf(what, sizeof(what), "%ld", idx);
		ret = ioctl(ctl_fd, cmds[op - OP_CTL_ADD], idx);
		break;
	}
	case OP_RAND_DEV:
		arg = chance(s, 2) ? hostile_ptr(s, t->buf) : rnd(s);
		for (int k = 0; k < 256; k++)
			t->buf[k] = rnd(s);
		{
			unsigned long cmd = 0x4C00 | below(s, 256);

			snprintf(what, sizeof(what), "fd %d, %#lx", fd, cmd);
			ret = ioctl(fd, cmd, arg);
		}
		break;
	case OP_RAND_CTL: {
		unsigned long cmd = 0x4C00 | below(s, 256);

		/* Only small indices: no device far above loop12. */
		arg = chance(s, 4) ? (unsigned long)-1 :
				     ADD_MIN + below(s, ADD_MAX - ADD_MIN + 1);
		snprintf(what, sizeof(what), "%#lx, %ld", cmd, (long)arg);
		ret = ioctl(ctl_fd, cmd, arg);
		break;
	}
	case OP_OPEN: {
		int nfd = open_dev(s, &ret, &err, what, sizeof(what));

		if (nfd >= 0)
			slot_put(dev_slot, DEV_SLOTS, s, nfd);
		record(t->id, op, ret, err, what);
		goto out;
	}
	case OP_CLOSE: {
		int old = __atomic_exchange_n(&dev_slot[below(s, DEV_SLOTS)],
					      -1, __ATOMIC_ACQ_REL);

		ret = old >= 0 ? close(old) : 0;
		break;
	}
	case OP_VOL_OPEN: {
		static const int acc[] = { O_RDWR, O_RDONLY, O_RDWR | O_DIRECT };
		int nfd = open(file_path[below(s, NFILES)],
			       PICK(s, acc) | O_CLOEXEC);

		ret = nfd;
		err = errno;
		if (nfd >= 0)
			slot_put(vol_slot, VOL_SLOTS, s, nfd);
		record(t->id, op, ret, err, what);
		goto out;
	}
	case OP_PREAD:
	case OP_PWRITE: {
		static const size_t lens[] = { 512, 4096, 4096, 65536, 1024 };
		size_t len = chance(s, 5) ? 1 + below(s, 65536) : PICK(s, lens);
		off_t off = below(s, (off_t)1 << (20 + below(s, 5)));
		char *b = t->buf + (chance(s, 5) ? below(s, 4096) : 0);

		if (!chance(s, 5))
			off &= chance(s, 2) ? ~4095 : ~511;
		if (op == OP_PREAD) {
			ret = pread(fd, b, len, off);
		} else {
			pattern_fill(b, len, off, t->id);
			ret = pwrite(fd, b, len, off);
		}
		err = errno;
		if (ret < 0) {
			/*
			 * What the fd names now (another thread may have
			 * reused its number since), for the trace and an
			 * unexpected errno.
			 */
			char link[64], target[96] = "?";
			ssize_t n;

			snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
			n = readlink(link, target, sizeof(target) - 1);
			target[n > 0 ? n : 1] = '\0';
			snprintf(what, sizeof(what),
				 "fd %d (%s), %zu bytes at %lld, buffer +%ld",
				 fd, target, len, (long long)off,
				 (long)(b - t->buf));
		}
		record(t->id, op, ret, err, what);
		goto out;
	}
	case OP_FSYNC:
		ret = chance(s, 2) ? fsync(fd) : fdatasync(fd);
		break;
	case OP_DISCARD:
	case OP_ZEROOUT:
		range[0] = chance(s, 6) ? hostile_u64(s) :
			   below(s, 1ULL << (20 + below(s, 4))) & ~511ULL;
		range[1] = chance(s, 6) ? hostile_u64(s) :
					  (1 + below(s, 256)) * 512;
		snprintf(what, sizeof(what), "fd %d, %llu+%llu", fd,
			 (unsigned long long)range[0],
			 (unsigned long long)range[1]);
		ret = ioctl(fd, op == OP_DISCARD ? BLKDISCARD : BLKZEROOUT,
			    range);
		break;
	case OP_RRPART:
		ret = ioctl(fd, BLKRRPART, 0);
		break;
	case OP_FLSBUF:
		ret = ioctl(fd, BLKFLSBUF, 0);
		break;
	case OP_GETSIZE64: {
		unsigned long long size;

		ret = ioctl(fd, BLKGETSIZE64, &size);
		break;
	}
	case OP_SYSFS: {
		static const char *const attrs[] = {
			"loop/backing_file", "loop/offset", "loop/sizelimit",
			"loop/autoclear", "loop/partscan", "loop/dio", "size",
			"ro", "queue/logical_block_size", "discard_alignment",
		};
		char p[128], b[4096];

		snprintf(p, sizeof(p), "/sys/block/loop%d/%s", dev_index(s),
			 PICK(s, attrs));
		snprintf(what, sizeof(what), "%s", p);
		ret = read_file(p, b, sizeof(b));
		err = -ret;
		record(t->id, op, ret, err, what);
		goto out;
	}
	default:
		break;
	}
	err = errno;
	record(t->id, op, ret, err, what);
out:
	if (tmp >= 0)
		close(tmp);
}

static void *fuzz_thread(void *arg)
{
	struct thread *t = arg;
	int total = 0;
	enum op op;

	for (int i = 0; i < NOPS; i++)
		total += op_weight[i];
	while (!stop) {
		int w = below(&t->seed, total);

		for (op = 0; op < NOPS - 1 && w >= op_weight[op]; op++)
			w -= op_weight[op];
		sh->cur_op[t->id] = op;
		one_op(t, op);
		if (max_calls && __atomic_load_n(&sh->calls, __ATOMIC_RELAXED) >=
				 max_calls)
			stop = 1;
	}
	sh->cur_op[t->id] = -1;
	return NULL;
}

static int make_file(char *path, size_t len, const char *name, off_t size)
{
	int fd;

	snprintf(path, len, "%s/fuzz_test.%s.%d", scratch_dir(), name, getpid());
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (ftruncate(fd, size)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The child: opens everything, runs the threads for @seconds, exits. */
static int fuzz_child(uint64_t seed, int seconds)
{
	struct thread th[MAX_THREADS];
	char *p;

	signal(SIGPIPE, SIG_IGN);
	ctl_fd = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl_fd < 0)
		return 10;
	for (int i = 0; i < NFILES; i++) {
		char name[16];

		snprintf(name, sizeof(name), "f%d", i);
		file_fd[i] = make_file(file_path[i], sizeof(file_path[i]), name,
				       (off_t)(1 << i) << 20);
		if (file_fd[i] < 0)
			return 11;
	}
	empty_fd = make_file(empty_path, sizeof(empty_path), "empty", 0);
	tiny_fd = make_file(tiny_path, sizeof(tiny_path), "tiny", 100);
	ro_fd = open(file_path[0], O_RDONLY | O_CLOEXEC);
	wo_fd = open(file_path[1], O_WRONLY | O_CLOEXEC);
	direct_fd = open(file_path[2], O_RDWR | O_DIRECT | O_CLOEXEC);
	path_fd = open(file_path[3], O_PATH | O_CLOEXEC);
	dir_fd = open(scratch_dir(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	event_fd = eventfd(0, EFD_CLOEXEC);
	if (empty_fd < 0 || tiny_fd < 0 || ro_fd < 0 || wo_fd < 0 ||
	    direct_fd < 0 || path_fd < 0 || dir_fd < 0 || null_fd < 0 ||
	    event_fd < 0 || pipe2(pipe_fd, O_CLOEXEC) ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sock_fd))
		return 12;
	/* A page, an unmapped page, a read-only page. */
	p = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return 13;
	munmap(p + 4096, 4096);
	unmapped = p + 4096;
	straddle = p + 4096 - 16;
	ro_page = p + 2 * 4096;
	mprotect(ro_page, 4096, PROT_READ);
	for (int i = 0; i < DEV_SLOTS; i++)
		dev_slot[i] = -1;
	for (int i = 0; i < VOL_SLOTS; i++)
		vol_slot[i] = -1;

	for (int i = 0; i < nthreads; i++) {
		th[i].id = i;
		th[i].seed = seed * 0x100000001b3ULL + i;
		th[i].buf = aligned_alloc(4096, 65536 + 4096);
		if (!th[i].buf || pthread_create(&th[i].th, NULL, fuzz_thread,
						 &th[i]))
			return 14;
	}
	if (!max_calls) {
		sleep(seconds);
		stop = 1;
	}
	for (int i = 0; i < nthreads; i++)
		pthread_join(th[i].th, NULL);
	for (int i = 0; i < DEV_SLOTS; i++)
		if (dev_slot[i] >= 0)
			close(dev_slot[i]);
	for (int i = 0; i < NFILES; i++)
		unlink(file_path[i]);
	unlink(empty_path);
	unlink(tiny_path);
	sh->done = 1;
	return 0;
}

static bool loop_bound(int idx)
{
	return path_exists("/sys/block/loop%d/loop", idx);
}

/* Indices of every loop device in /sys/block; returns their number. */
static int loop_devices(int *idx, int max)
{
	DIR *d = opendir("/sys/block");
	struct dirent *de;
	int n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d)) && n < max) {
		char *end;
		long v;

		if (strncmp(de->d_name, "loop", 4))
			continue;
		v = strtol(de->d_name + 4, &end, 10);
		if (end != de->d_name + 4 && !*end)
			idx[n++] = v;
	}
	closedir(d);
	return n;
}

static void print_histogram(void)
{
	for (int op = 0; op < NOPS; op++) {
		char line[1024];
		unsigned long long total = 0;
		int len;

		for (int e = 0; e <= MAX_ERRNO; e++)
			total += sh->counts[op][e];
		len = snprintf(line, sizeof(line), "# %-20s %8llu:", op_names[op],
			       total);
		for (int e = 0; e <= MAX_ERRNO && len < (int)sizeof(line) - 40;
		     e++) {
			if (!sh->counts[op][e])
				continue;
			len += snprintf(line + len, sizeof(line) - len, " %s %llu",
					e ? strerrorname_np(e) ?: "?" : "ok",
					sh->counts[op][e]);
		}
		printf("%s\n", line);
	}
}

/* Kernel stacks of the child's threads, into the test output. */
static void dump_stacks(pid_t pid)
{
	run("for t in /proc/%d/task/*; do echo \"# $t: $(cat $t/wchan)\";"
	    " sed 's/^/#   /' $t/stack; done", pid);
	run("echo w > /proc/sysrq-trigger");
}

FIXTURE(fuzz) {};

FIXTURE_SETUP(fuzz)
{
	if (!drv_loaded())
		ASSERT_EQ(0, drv_load(NULL));
}

FIXTURE_TEARDOWN(fuzz) {}

TEST_F_TIMEOUT(fuzz, ioctls, 14400)
{
	const char *env;
	uint64_t seed;
	int seconds = tier_count(3, 30, 0), idx[256], n, status;
	bool bound, hung = false;
	long long start, deadline;
	pid_t pid;

	max_calls = seconds ? 0 : 1000000;
	/* The 32-bit build only adds the compat_ioctl paths: half the time. */
	if (sizeof(long) == 4)
		seconds /= 2, max_calls /= 2;
	env = getenv("FUZZ_SEED");
	seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL) ^ getpid();
	if ((env = getenv("FUZZ_SECONDS")))
		seconds = atoi(env), max_calls = 0;
	if ((env = getenv("FUZZ_CALLS")))
		max_calls = strtoull(env, NULL, 0);
	if ((env = getenv("FUZZ_THREADS")))
		nthreads = atoi(env) < 1 ? 1 : atoi(env) > MAX_THREADS ?
			   MAX_THREADS : atoi(env);
	if ((env = getenv("FUZZ_DEVS")))
		ndevs = atoi(env) < 1 ? 1 : atoi(env) > FUZZ_DEVS ?
			FUZZ_DEVS : atoi(env);
	printf("# seed %llu (FUZZ_SEED), %d threads, loop0..loop%d, %s %llu\n",
	       (unsigned long long)seed, nthreads,
	       ndevs - 1,
	       max_calls ? "calls" : "seconds",
	       max_calls ? max_calls : (unsigned long long)seconds);
	init_allowed();
	if ((env = getenv("FUZZ_TRACE")))
		for (int i = 0; i < NOPS; i++)
			if (!strcmp(env, op_names[i]))
				trace_op = i;

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_TRUE(sh != MAP_FAILED);
	start = now_ns();
	for (int i = 0; i < nthreads; i++) {
		sh->progress_ns[i] = start;
		sh->cur_op[i] = -1;
	}
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(fuzz_child(seed, seconds));

	/* Watch for a thread that stops making progress. */
	deadline = 0;
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		long long now = now_ns();

		if (w == pid)
			break;
		if (sh->done && !deadline)
			deadline = now + HANG_SECONDS * 1000000000LL;
		for (int i = 0; i < nthreads && !sh->done; i++) {
			if (sh->cur_op[i] >= 0 &&
			    now - sh->progress_ns[i] > HANG_SECONDS * 1000000000LL) {
				printf("# thread %d hangs in %s\n", i,
				       op_names[sh->cur_op[i]]);
				hung = true;
			}
		}
		if (hung || (deadline && now > deadline)) {
			hung = true;
			dump_stacks(pid);
			kill(pid, SIGKILL);
			break;
		}
		usleep(200000);
	}
	printf("# %llu calls in %.1f s\n", sh->calls, (now_ns() - start) / 1e9);
	print_histogram();
	for (unsigned long long i = 0; i < sh->unexpected && i < 8; i++)
		printf("# unexpected: %s\n", sh->first_unexpected[i]);
	ASSERT_FALSE(hung) TH_LOG("a fuzz thread hung, seed %llu",
				  (unsigned long long)seed);
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
		TH_LOG("fuzz child status %#x", status);
	EXPECT_EQ(0ULL, sh->unexpected) TH_LOG("seed %llu", (unsigned long long)seed);

	/*
	 * Clean end state: every device detaches (a device backing another
	 * one detaches when that one lets its file go, so several rounds),
	 * then every device above loop5 is removed.
	 */
	deadline = now_ns() + SETTLE_SECONDS * 1000000000LL;
	do {
		bound = false;
		n = loop_devices(idx, 256);
		for (int i = 0; i < n; i++) {
			int fd;

			if (!loop_bound(idx[i]))
				continue;
			bound = true;
			fd = loop_open(idx[i], O_RDONLY);
			if (fd >= 0) {
				ioctl(fd, LOOP_CLR_FD, 0);
				close(fd);
			}
		}
		if (bound)
			usleep(100000);
	} while (bound && now_ns() < deadline);
	n = loop_devices(idx, 256);
	for (int i = 0; i < n; i++) {
		EXPECT_FALSE(loop_bound(idx[i]))
			TH_LOG("loop%d stays bound", idx[i]);
	}
	for (int i = 0; i < n; i++) {
		long r;

		if (idx[i] < ADD_MIN)
			continue;
		do {
			int c = open("/dev/loop-control", O_RDWR | O_CLOEXEC);

			r = c < 0 ? -errno : ioctl(c, LOOP_CTL_REMOVE, idx[i]);
			if (r < 0 && c >= 0)
				r = -errno;
			if (c >= 0)
				close(c);
			if (r == -EBUSY)
				usleep(100000);
		} while (r == -EBUSY && now_ns() < deadline);
		EXPECT_TRUE(r == 0 || r == -ENODEV)
			TH_LOG("LOOP_CTL_REMOVE %d: %s", idx[i], strerror(-r));
		EXPECT_FALSE(path_exists("/sys/block/loop%d", idx[i]));
	}
}

TEST_HARNESS_MAIN
