/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The "cfg" fixture of the binding tests (config_test.c, status_test.c):
 * up to four loop devices a test opens and binds, and up to four backing
 * files it creates, all released by the teardown; plus the ioctl wrappers
 * (returning 0 or -errno) and the checks they share. Include after
 * kselftest_harness.h.
 */
#ifndef RUST_LOOP_TESTS_BIND_H
#define RUST_LOOP_TESTS_BIND_H

#include <limits.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <linux/fs.h>
#include <linux/loop.h>

#define MIB (1024 * 1024)
#define MAX_DEVS 4
#define MAX_FILES 4

FIXTURE(cfg) {
	int ndev;
	int idx[MAX_DEVS];
	int fd[MAX_DEVS];
	int oflags[MAX_DEVS];
	bool added[MAX_DEVS];
	int nfile;
	char file[MAX_FILES][256];
};

FIXTURE_SETUP(cfg)
{
	self->ndev = 0;
	self->nfile = 0;
}

FIXTURE_TEARDOWN(cfg)
{
	/* Newest first: a loop device backed by an older one goes first. */
	for (int i = self->ndev - 1; i >= 0; i--) {
		if (self->fd[i] >= 0) {
			ioctl(self->fd[i], LOOP_CLR_FD);
			close(self->fd[i]);
		}
		if (self->added[i]) {
			int ctl = open("/dev/loop-control", O_RDWR);

			if (ctl >= 0) {
				ioctl(ctl, LOOP_CTL_REMOVE, self->idx[i]);
				close(ctl);
			}
		}
	}
	for (int i = 0; i < self->nfile; i++)
		unlink(self->file[i]);
}

/*
 * A loop device opened with @oflags; returns its slot in the fixture. An
 * unbound device already held by this test is not reused: GET_FREE would
 * return it again, so a new one is added instead.
 */
static inline int get_dev(struct __test_metadata *_metadata,
		   FIXTURE_DATA(cfg) *self, int oflags)
{
	int idx = loop_get_free(), n = self->ndev;
	bool held = false;

	ASSERT_LE(0, idx);
	for (int i = 0; i < n; i++)
		held |= self->idx[i] == idx;
	if (held) {
		int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);

		ASSERT_LE(0, ctl);
		idx = ioctl(ctl, LOOP_CTL_ADD, -1L);
		close(ctl);
		ASSERT_LE(0, idx);
	}
	ASSERT_GT(MAX_DEVS, n);
	self->idx[n] = idx;
	self->added[n] = held;
	self->oflags[n] = oflags;
	self->fd[n] = loop_open(idx, oflags);
	ASSERT_LE(0, self->fd[n]) TH_LOG("open /dev/loop%d: %s", idx,
					  strerror(-self->fd[n]));
	self->ndev++;
	return n;
}

static inline void fill(unsigned char *buf, size_t len, off_t pos, unsigned int seed)
{
	pattern_fill(buf, len, pos, seed);
}

static inline bool check(const unsigned char *buf, size_t len, off_t pos,
		  unsigned int seed)
{
	return pattern_check(buf, len, pos, seed) < 0;
}

/* A backing file of @size bytes in the scratch directory (sparse, or
 * filled with the test data of @seed when @seed is non-zero). */
static inline const char *mkfile(struct __test_metadata *_metadata,
			  FIXTURE_DATA(cfg) *self, off_t size, unsigned int seed)
{
	char *p;
	int fd;

	ASSERT_GT(MAX_FILES, self->nfile);
	p = self->file[self->nfile];
	snprintf(p, sizeof(self->file[0]), "%s/cfg-%d-%d", scratch_dir(),
		 getpid(), self->nfile);
	fd = open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ASSERT_LE(0, fd) TH_LOG("create %s: %s", p, strerror(errno));
	self->nfile++;
	ASSERT_EQ(0, ftruncate(fd, size));
	if (seed) {
		static unsigned char buf[65536];

		for (off_t o = 0; o < size; o += sizeof(buf)) {
			size_t n = size - o < (off_t)sizeof(buf) ? (size_t)(size - o) : sizeof(buf);

			fill(buf, n, o, seed);
			ASSERT_EQ((ssize_t)n, pwrite(fd, buf, n, o));
		}
		ASSERT_EQ(0, fsync(fd));
	}
	close(fd);
	return p;
}

static inline int xopen(struct __test_metadata *_metadata, const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC);

	ASSERT_LE(0, fd) TH_LOG("open %s: %s", path, strerror(errno));
	return fd;
}

static inline int set_fd(int devfd, int fd)
{
	return ioctl(devfd, LOOP_SET_FD, fd) ? -errno : 0;
}

static inline int configure_cfg(int devfd, struct loop_config *c)
{
	return ioctl(devfd, LOOP_CONFIGURE, c) ? -errno : 0;
}

/* GET_STATUS64 into @info, which is poisoned first; 0 or -errno. */
static inline int get_status(int devfd, struct loop_info64 *info)
{
	memset(info, 0xa5, sizeof(*info));
	return ioctl(devfd, LOOP_GET_STATUS64, info) ? -errno : 0;
}

/* dev_t as the kernel's huge_encode_dev() (new_encode_dev()) encodes it. */
static inline __u64 enc_dev(dev_t d)
{
	unsigned int ma = major(d), mi = minor(d);

	return (mi & 0xff) | (ma << 8) | ((__u64)(mi & ~0xffu) << 12);
}

static inline bool all_zero(const void *p, size_t n)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++)
		if (c[i])
			return false;
	return true;
}

static inline bool loop_dir(int idx)
{
	return path_exists("/sys/block/loop%d/loop", idx);
}

/* The device in slot @s is unbound: GET_STATUS64 says ENXIO, the size is
 * 0 and the "loop" sysfs group is gone. */
#define ASSERT_UNBOUND(s) do {						\
	struct loop_info64 _i;						\
	ASSERT_EQ(-ENXIO, get_status(self->fd[s], &_i));		\
	ASSERT_EQ(0, loop_sysfs_ll(self->idx[s], "size"));		\
	ASSERT_FALSE(loop_dir(self->idx[s]));				\
} while (0)

/* Close slot @s and open the device again with the same flags. */
static inline void reopen(struct __test_metadata *_metadata, FIXTURE_DATA(cfg) *self,
		   int s)
{
	if (self->fd[s] >= 0)
		close(self->fd[s]);
	self->fd[s] = loop_open(self->idx[s], self->oflags[s]);
	ASSERT_LE(0, self->fd[s]);
}

/* Detach slot @s (LOOP_CLR_FD and last close) and reopen it unbound. */
static inline void detach(struct __test_metadata *_metadata, FIXTURE_DATA(cfg) *self,
		   int s)
{
	ASSERT_EQ(0, ioctl(self->fd[s], LOOP_CLR_FD));
	reopen(_metadata, self, s);
	ASSERT_UNBOUND(s);
}

/* After a failed bind: still unbound, and a plain SET_FD works. */
static inline void assert_bindable(struct __test_metadata *_metadata,
			    FIXTURE_DATA(cfg) *self, int s, const char *file)
{
	struct loop_info64 info;
	int ffd;

	ASSERT_UNBOUND(s);
	ffd = xopen(_metadata, file, O_RDWR);
	ASSERT_EQ(0, set_fd(self->fd[s], ffd));
	close(ffd);
	ASSERT_EQ(0, get_status(self->fd[s], &info));
	ASSERT_EQ(0, (int)info.lo_flags & LO_FLAGS_READ_ONLY);
	ASSERT_TRUE(loop_dir(self->idx[s]));
	detach(_metadata, self, s);
}

static inline long long blk_size64(int fd)
{
	unsigned long long sz;

	return ioctl(fd, BLKGETSIZE64, &sz) ? -errno : (long long)sz;
}

#endif /* RUST_LOOP_TESTS_BIND_H */
