/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the rust_loop kselftests: which driver is under test
 * (rust_loop.ko or the kernel's own loop.ko, chosen by tests/run.sh through
 * the environment), loading and unloading it, and small file utilities.
 *
 * Every test runs against both drivers in the same guest; loop.ko is the
 * specification, so a test whose expectation loop.ko does not meet is a
 * wrong test, and a test rust_loop fails is a bug in rust_loop.
 */
#ifndef RUST_LOOP_TESTS_COMMON_H
#define RUST_LOOP_TESTS_COMMON_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/*
 * Line-buffered output, so that a crash or a hang loses no result line.
 * tests/run.sh runs the 64-bit programs under stdbuf -oL as well; stdbuf
 * cannot preload itself into the 32-bit ones.
 */
__attribute__((constructor)) static void line_buffered_output(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
}

/* The driver under test: "rust_loop" or "loop". */
static inline const char *drv_name(void)
{
	const char *d = getenv("LOOP_DRIVER");

	return d && !strcmp(d, "c") ? "loop" : "rust_loop";
}

static inline bool drv_is_rust(void)
{
	return !strcmp(drv_name(), "rust_loop");
}

/* Path of the driver's .ko file. */
static inline const char *drv_path(void)
{
	static char path[4096];
	const char *p;

	if (drv_is_rust()) {
		p = getenv("RUST_LOOP_KO");
		return p ? p : "rust_loop.ko";
	}
	p = getenv("LOOP_KO");
	if (p)
		return p;
	FILE *f = popen("modinfo -n loop 2>/dev/null", "r");

	if (!f || !fgets(path, sizeof(path), f))
		path[0] = 0;
	if (f)
		pclose(f);
	path[strcspn(path, "\n")] = 0;
	return path;
}

static inline bool drv_loaded(void)
{
	char p[256];

	snprintf(p, sizeof(p), "/sys/module/%s/initstate", drv_name());
	return access(p, F_OK) == 0;
}

#ifndef MODULE_INIT_COMPRESSED_FILE
#define MODULE_INIT_COMPRESSED_FILE 4
#endif

/*
 * finit_module() the driver with @params; returns 0 or -errno. A compressed
 * module file (Debian's kernel ships loop.ko.xz) is handed to the kernel
 * to decompress, as kmod does.
 */
static inline int drv_load(const char *params)
{
	const char *path = drv_path();
	const char *dot = strrchr(path, '.');
	int flags = dot && strcmp(dot, ".ko") ? MODULE_INIT_COMPRESSED_FILE : 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int ret;

	if (fd < 0)
		return -errno;
	ret = syscall(SYS_finit_module, fd, params ? params : "", flags);
	ret = ret ? -errno : 0;
	close(fd);
	return ret;
}

/* delete_module() the driver; returns 0 or -errno. */
static inline int drv_unload(void)
{
	int ret = syscall(SYS_delete_module, drv_name(), O_NONBLOCK);

	return ret ? -errno : 0;
}

/*
 * Unload if loaded, retrying a while on EBUSY/EAGAIN, as a just-closed
 * device may still be in its final release; returns 0 or -EBUSY.
 */
static inline int drv_unload_settled(void)
{
	for (int i = 0; i < 200 && drv_loaded(); i++) {
		int ret = drv_unload();

		if (!ret || ret == -ENOENT)
			break;
		usleep(10000);
	}
	return drv_loaded() ? -EBUSY : 0;
}

/* Unload (drv_unload_settled()) and load again with @params. */
static inline int drv_reload(const char *params)
{
	int ret = drv_unload_settled();

	return ret ? ret : drv_load(params);
}

/*
 * A repetition count by test tier (README.md): @quick with RL_QUICK set
 * (make check QUICK=1), @full with RL_FULL set (make check FULL=1),
 * @normal otherwise.
 */
static inline int tier_count(int quick, int normal, int full)
{
	if (getenv("RL_QUICK"))
		return quick;
	if (getenv("RL_FULL"))
		return full;
	return normal;
}

/* Run a shell command; returns its exit status, or -1. */
static inline int run(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	return st == -1 || !WIFEXITED(st) ? -1 : WEXITSTATUS(st);
}

/* Read a small file into @buf (NUL terminated, trailing newline cut). */
static inline int read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	if (n && buf[n - 1] == '\n')
		buf[n - 1] = 0;
	return 0;
}

static inline bool path_exists(const char *fmt, ...)
{
	char p[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p, sizeof(p), fmt, ap);
	va_end(ap);
	return access(p, F_OK) == 0;
}

/* Directory for backing files: the guest's ext4 scratch disk. */
static inline const char *scratch_dir(void)
{
	const char *d = getenv("RL_SCRATCH");

	return d ? d : "/tmp";
}

/*
 * Loop device helpers shared by the data-path tests (config_test, io_test,
 * status_test).
 */
#include <sys/ioctl.h>
#include <linux/loop.h>

/*
 * What a loop device answers to a command that is not one of its own:
 * lo_ioctl()'s default (lo_simple_ioctl()) is EINVAL, while
 * lo_compat_ioctl() answers -ENOIOCTLCMD, which the compat block ioctl
 * path turns into ENOTTY for a 32-bit caller (tests/Makefile builds some
 * tests as 32-bit programs).
 */
#define UNKNOWN_LOOP_IOCTL_ERR (sizeof(long) == 4 ? -ENOTTY : -EINVAL)

/* LOOP_CTL_GET_FREE: index of a free (unbound) loop device, or -errno. */
static inline int loop_get_free(void)
{
	int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	int idx;

	if (ctl < 0)
		return -errno;
	idx = ioctl(ctl, LOOP_CTL_GET_FREE);
	if (idx < 0)
		idx = -errno;
	close(ctl);
	return idx;
}

/* Open /dev/loop@idx with @flags (O_CLOEXEC added); fd or -errno. */
static inline int loop_open(int idx, int flags)
{
	char p[64];
	int fd;

	snprintf(p, sizeof(p), "/dev/loop%d", idx);
	fd = open(p, flags | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* LOOP_CONFIGURE of @devfd with file @fd and the given settings; 0 or -errno. */
static inline int configure(int devfd, int fd, __u32 flags, __u64 offset,
			    __u64 sizelimit, __u32 block_size)
{
	struct loop_config c;

	memset(&c, 0, sizeof(c));
	c.fd = fd;
	c.block_size = block_size;
	c.info.lo_flags = flags;
	c.info.lo_offset = offset;
	c.info.lo_sizelimit = sizelimit;
	return ioctl(devfd, LOOP_CONFIGURE, &c) ? -errno : 0;
}

/* Read /sys/block/loop@idx/@attr (e.g. "size", "loop/dio") into @buf. */
static inline int loop_sysfs_read(int idx, const char *attr, char *buf,
				  size_t len)
{
	char p[256];

	snprintf(p, sizeof(p), "/sys/block/loop%d/%s", idx, attr);
	return read_file(p, buf, len);
}

/* /sys/block/loop@idx/@attr as a number; -1 if unreadable. */
static inline long long loop_sysfs_ll(int idx, const char *attr)
{
	char buf[64];

	if (loop_sysfs_read(idx, attr, buf, sizeof(buf)))
		return -1;
	return strtoll(buf, NULL, 0);
}

/*
 * Test data: a stream of 8-byte words, each a hash of its position and a
 * seed, so data written to or read from a wrong place or from another
 * write is detected. pattern_fill() writes bytes [@pos, @pos + @len) of
 * the stream of @seed into @buf; pattern_check() returns the index of the
 * first byte of @buf that differs from them, or -1.
 */
static inline unsigned long long pattern_word(unsigned long long word,
					      unsigned int seed)
{
	unsigned long long x = word * 0x9e3779b97f4a7c15ULL +
			       (seed + 1) * 0xd1b54a32d192ed03ULL;

	x ^= x >> 29;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 32;
	return x;
}

static inline void pattern_fill(void *buf, size_t len, unsigned long long pos,
				unsigned int seed)
{
	unsigned char *b = buf;

	while (len) {
		unsigned long long w = pattern_word(pos >> 3, seed);

		if (!(pos & 7) && len >= 8) {
			memcpy(b, &w, 8);
			b += 8, pos += 8, len -= 8;
		} else {
			*b++ = w >> ((pos & 7) * 8);
			pos++, len--;
		}
	}
}

static inline long long pattern_check(const void *buf, size_t len,
				      unsigned long long pos, unsigned int seed)
{
	const unsigned char *b = buf;

	for (size_t i = 0; i < len;) {
		unsigned long long w = pattern_word((pos + i) >> 3, seed);

		if (!((pos + i) & 7) && len - i >= 8) {
			if (memcmp(b + i, &w, 8)) {
				while ((unsigned char)w == b[i])
					w >>= 8, i++;
				return i;
			}
			i += 8;
		} else {
			if (b[i] != (unsigned char)(w >> (((pos + i) & 7) * 8)))
				return i;
			i++;
		}
	}
	return -1;
}

#endif /* RUST_LOOP_TESTS_COMMON_H */
