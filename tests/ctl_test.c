// SPDX-License-Identifier: GPL-2.0
/*
 * The control plane of the driver under test, as drivers/block/loop.c
 * (Linux 7.3) defines it: /dev/loop-control (LOOP_CTL_ADD, LOOP_CTL_REMOVE,
 * LOOP_CTL_GET_FREE), the per-device ioctls of an unbound device, creating a
 * device by opening its node (CONFIG_BLOCK_LEGACY_AUTOLOAD), the module
 * parameters max_loop, max_part and hw_queue_depth, module unload, and a
 * concurrency stress of all of that.
 *
 * Every expectation here (return values and exact errnos) was read from
 * loop.c and measured on loop.ko; where the reason is not obvious, the
 * comment names the loop.c or block-layer code it comes from.
 *
 * Every test starts with the driver freshly loaded with default parameters
 * (eight unbound devices loop0..loop7, minors 7:0..7:7) and ends by
 * detaching whatever it bound and reloading the driver with defaults.
 */
#include "common.h"

#include <ctype.h>
#include <dirent.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <linux/fs.h>
#include <linux/loop.h>

#include "kselftest_harness.h"

#define LOOP_MAJOR	7
#define MISC_MAJOR	10
#define LOOP_CTRL_MINOR	237
#define MINORBITS	20

/* ioctl() returning the result or -errno. */
static long xioctl(int fd, unsigned long cmd, unsigned long arg)
{
	long r = ioctl(fd, cmd, arg);

	return r < 0 ? -errno : r;
}

/* A LOOP_CTL_* command with an int argument, sign-extended as a C caller's. */
static long ctl(int fd, unsigned long cmd, long arg)
{
	return xioctl(fd, cmd, (unsigned long)arg);
}

static int open_ctl(void)
{
	return open("/dev/loop-control", O_RDWR | O_CLOEXEC);
}

/* open() of /dev/loopN; returns the fd or -errno. */
static int open_loop(int idx, int flags)
{
	char p[64];
	int fd;

	snprintf(p, sizeof(p), "/dev/loop%d", idx);
	fd = open(p, flags | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static bool sys_block_has(int idx)
{
	return path_exists("/sys/block/loop%d", idx);
}

static bool dev_has(int idx)
{
	return path_exists("/dev/loop%d", idx);
}

/* "/dev/loopN" is a block node MAJ:MIN, and sysfs' dev says the same. */
static bool node_is(const char *path, bool blk, unsigned int maj,
		    unsigned int min)
{
	struct stat st;

	if (stat(path, &st))
		return false;
	if (blk ? !S_ISBLK(st.st_mode) : !S_ISCHR(st.st_mode))
		return false;
	return major(st.st_rdev) == maj && minor(st.st_rdev) == min;
}

static bool loop_dev_is(int idx, int part_shift)
{
	char p[64], want[32], buf[64];

	snprintf(p, sizeof(p), "/dev/loop%d", idx);
	if (!node_is(p, true, LOOP_MAJOR, (unsigned int)idx << part_shift))
		return false;
	snprintf(p, sizeof(p), "/sys/block/loop%d/dev", idx);
	snprintf(want, sizeof(want), "%d:%u", LOOP_MAJOR,
		 (unsigned int)idx << part_shift);
	return read_file(p, buf, sizeof(buf)) == 0 && !strcmp(buf, want);
}

/* Reads a sysfs file of a loop device into @buf; returns 0 or -errno. */
static int loop_attr(int idx, const char *attr, char *buf, size_t len)
{
	char p[128];

	snprintf(p, sizeof(p), "/sys/block/loop%d/%s", idx, attr);
	return read_file(p, buf, len);
}

/* Reads /sys/module/<driver>/parameters/@name. */
static int param_read(const char *name, char *buf, size_t len)
{
	char p[128];

	snprintf(p, sizeof(p), "/sys/module/%s/parameters/%s", drv_name(), name);
	return read_file(p, buf, len);
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

/*
 * The indices N of the entries named exactly "loopN" in @dir (/sys/block or
 * /dev), sorted; returns their number (at most @max), or -errno.
 */
static int list_loops(const char *dir, int *idx, int max)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int n = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		char *end;
		long v;

		if (strncmp(de->d_name, "loop", 4) || !isdigit(de->d_name[4]))
			continue;
		v = strtol(de->d_name + 4, &end, 10);
		if (*end || v < 0 || v > INT_MAX)
			continue;
		if (n < max)
			idx[n] = v;
		n++;
	}
	closedir(d);
	if (n > max)
		n = max;
	qsort(idx, n, sizeof(*idx), cmp_int);
	return n;
}

/* Number of entries of @dir whose name starts with "loop". */
static int count_loop_entries(const char *dir)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int n = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, "loop", 4))
			n++;
	closedir(d);
	return n;
}

/*
 * A backing file of @size bytes in the scratch directory, opened O_RDWR;
 * with @mbr, sector 0 holds an MBR with one Linux partition at sectors
 * 2048..4095. Returns the fd (the file is already unlinked) or -errno.
 */
static int backing_file(off_t size, bool mbr)
{
	char p[4096];
	int fd;

	snprintf(p, sizeof(p), "%s/ctl_test.XXXXXX", scratch_dir());
	fd = mkostemp(p, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	unlink(p);
	if (ftruncate(fd, size))
		goto err;
	if (mbr) {
		unsigned char s[512] = { 0 };
		unsigned char *e = s + 446;
		uint32_t start = 2048, count = 2048;

		e[4] = 0x83;
		memcpy(e + 8, &start, 4);	/* x86: little endian */
		memcpy(e + 12, &count, 4);
		s[510] = 0x55;
		s[511] = 0xaa;
		if (pwrite(fd, s, sizeof(s), 0) != sizeof(s))
			goto err;
		fsync(fd);
	}
	return fd;
err:
	close(fd);
	return -EIO;
}

/* Binds /dev/loop@idx to a fresh backing file with LOOP_SET_FD. */
static int bind_loop(int idx, off_t size, bool mbr)
{
	int bfd = backing_file(size, mbr), fd, ret;

	if (bfd < 0)
		return bfd;
	fd = open_loop(idx, O_RDWR);
	if (fd < 0) {
		close(bfd);
		return fd;
	}
	ret = xioctl(fd, LOOP_SET_FD, bfd);
	close(fd);
	close(bfd);
	return ret;
}

/* LOOP_CLR_FD on /dev/loop@idx (the detach completes at our close). */
static int unbind_loop(int idx)
{
	int fd = open_loop(idx, O_RDWR), ret;

	if (fd < 0)
		return fd;
	ret = xioctl(fd, LOOP_CLR_FD, 0);
	close(fd);
	return ret;
}

/* A block node LOOP_MAJOR:@minor in the scratch directory, at @path. */
static int make_node(char *path, size_t len, unsigned int minor)
{
	snprintf(path, len, "%s/ctl_test-node-%u", scratch_dir(), minor);
	unlink(path);
	if (mknod(path, S_IFBLK | 0600, makedev(LOOP_MAJOR, minor)))
		return -errno;
	return 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

FIXTURE(ctl) {
	int ctl;
	int fds[16];
	int nfds;
	char nodes[8][256];
	int nnodes;
};

/* Remember an fd for the teardown to close. */
static int keep(FIXTURE_DATA(ctl) *self, int fd)
{
	if (fd >= 0 && self->nfds < (int)(sizeof(self->fds) / sizeof(self->fds[0])))
		self->fds[self->nfds++] = fd;
	return fd;
}

/* Close a kept fd early. */
static void drop(FIXTURE_DATA(ctl) *self, int fd)
{
	for (int i = 0; i < self->nfds; i++) {
		if (self->fds[i] == fd) {
			close(fd);
			self->fds[i] = -1;
		}
	}
}

static int node(FIXTURE_DATA(ctl) *self, unsigned int minor, char *path,
		size_t len)
{
	int ret = make_node(path, len, minor);

	if (!ret && self->nnodes < 8)
		snprintf(self->nodes[self->nnodes++], sizeof(self->nodes[0]),
			 "%s", path);
	return ret;
}

/* Reload the driver with @params and reopen /dev/loop-control. */
static int reload(FIXTURE_DATA(ctl) *self, const char *params)
{
	int ret;

	if (self->ctl >= 0)
		close(self->ctl);
	self->ctl = -1;
	ret = drv_reload(params);
	if (ret)
		return ret;
	self->ctl = open_ctl();
	return self->ctl < 0 ? -errno : 0;
}

FIXTURE_SETUP(ctl)
{
	self->ctl = -1;
	self->nfds = 0;
	self->nnodes = 0;
	ASSERT_EQ(0, reload(self, NULL));
}

FIXTURE_TEARDOWN(ctl)
{
	int idx[512], n;

	for (int i = 0; i < self->nfds; i++)
		if (self->fds[i] >= 0)
			close(self->fds[i]);
	for (int i = 0; i < self->nnodes; i++)
		unlink(self->nodes[i]);
	if (self->ctl >= 0)
		close(self->ctl);
	if (!drv_loaded())
		goto unload;
	/* Detach what the test bound: an unload would leak its file. */
	n = list_loops("/sys/block", idx, 512);
	for (int i = 0; i < n; i++)
		if (path_exists("/sys/block/loop%d/loop", idx[i]))
			unbind_loop(idx[i]);
unload:
	self->ctl = -1;
	/*
	 * The driver must unload after every test; the next test's setup
	 * loads it again (one load per test: loads are slow under KASAN).
	 */
	EXPECT_EQ(0, drv_unload_settled());
}

/* Reloads are slow on the KASAN kernel under TCG: room for them. */
#define CTL_TEST(name) TEST_F_TIMEOUT(ctl, name, 180)

/* ------------------------------------------------------------------ */
/* /dev/loop-control and the default devices                           */

CTL_TEST(control_node_is_misc_10_237)
{
	char buf[64];

	ASSERT_TRUE(node_is("/dev/loop-control", false, MISC_MAJOR,
			    LOOP_CTRL_MINOR));
	ASSERT_TRUE(path_exists("/sys/class/misc/loop-control"));
	ASSERT_EQ(0, read_file("/sys/class/misc/loop-control/dev", buf,
			       sizeof(buf)));
	EXPECT_STREQ("10:237", buf);
	/* Opening it holds a module reference. */
	snprintf(buf, sizeof(buf), "/sys/module/%s/refcnt", drv_name());
	{
		char rc[16];

		ASSERT_EQ(0, read_file(buf, rc, sizeof(rc)));
		EXPECT_STREQ("1", rc);
	}
}

CTL_TEST(default_load_creates_loop0_to_loop7)
{
	char buf[64];

	for (int i = 0; i < 8; i++) {
		EXPECT_TRUE(sys_block_has(i)) TH_LOG("loop%d", i);
		EXPECT_TRUE(loop_dev_is(i, 0)) TH_LOG("loop%d", i);
		/* One minor each: no partitions. */
		ASSERT_EQ(0, loop_attr(i, "range", buf, sizeof(buf)));
		EXPECT_STREQ("1", buf);
	}
	EXPECT_FALSE(sys_block_has(8));
	EXPECT_FALSE(dev_has(8));
	{
		int idx[64];

		EXPECT_EQ(8, list_loops("/sys/block", idx, 64));
		EXPECT_EQ(8, list_loops("/dev", idx, 64));
	}
}

/* loop.c's parameters are 0444 module parameters, visible in sysfs. */
CTL_TEST(parameters_are_shown_in_sysfs)
{
	char buf[64];

	ASSERT_EQ(0, param_read("max_loop", buf, sizeof(buf)));
	EXPECT_STREQ("8", buf);
	ASSERT_EQ(0, param_read("max_part", buf, sizeof(buf)));
	EXPECT_STREQ("0", buf);
	ASSERT_EQ(0, param_read("hw_queue_depth", buf, sizeof(buf)));
	EXPECT_STREQ("128", buf);
}

/* ------------------------------------------------------------------ */
/* LOOP_CTL_ADD                                                         */

CTL_TEST(add_returns_index_and_creates_device)
{
	char buf[64];

	EXPECT_FALSE(sys_block_has(20));
	ASSERT_EQ(20, ctl(self->ctl, LOOP_CTL_ADD, 20));
	EXPECT_TRUE(sys_block_has(20));
	EXPECT_TRUE(loop_dev_is(20, 0));
	/* A new device is unbound and empty. */
	ASSERT_EQ(0, loop_attr(20, "size", buf, sizeof(buf)));
	EXPECT_STREQ("0", buf);
	EXPECT_FALSE(path_exists("/sys/block/loop20/loop"));
	/* Only that one. */
	EXPECT_FALSE(sys_block_has(8));
	EXPECT_FALSE(sys_block_has(19));
	EXPECT_FALSE(sys_block_has(21));
	/* And it opens. */
	{
		int fd = open_loop(20, O_RDWR);

		EXPECT_LE(0, fd);
		if (fd >= 0)
			close(fd);
	}
}

CTL_TEST(add_existing_index_is_eexist)
{
	/* Pre-created by the module. */
	EXPECT_EQ(-EEXIST, ctl(self->ctl, LOOP_CTL_ADD, 0));
	EXPECT_EQ(-EEXIST, ctl(self->ctl, LOOP_CTL_ADD, 7));
	/* Created by ADD. */
	ASSERT_EQ(12, ctl(self->ctl, LOOP_CTL_ADD, 12));
	EXPECT_EQ(-EEXIST, ctl(self->ctl, LOOP_CTL_ADD, 12));
	EXPECT_TRUE(sys_block_has(12));
	/* An open device is no different. */
	keep(self, open_loop(3, O_RDONLY));
	EXPECT_EQ(-EEXIST, ctl(self->ctl, LOOP_CTL_ADD, 3));
}

/* A negative index asks for the lowest free one (idr_alloc from 0). */
CTL_TEST(add_negative_takes_lowest_free_index)
{
	EXPECT_EQ(8, ctl(self->ctl, LOOP_CTL_ADD, -1));
	EXPECT_TRUE(loop_dev_is(8, 0));
	EXPECT_EQ(9, ctl(self->ctl, LOOP_CTL_ADD, -100));
	EXPECT_EQ(10, ctl(self->ctl, LOOP_CTL_ADD, INT_MIN));
	/* A hole is filled first: the removed index is reused. */
	ASSERT_EQ(0, ctl(self->ctl, LOOP_CTL_REMOVE, 3));
	ASSERT_EQ(0, ctl(self->ctl, LOOP_CTL_REMOVE, 1));
	EXPECT_EQ(1, ctl(self->ctl, LOOP_CTL_ADD, -1));
	EXPECT_EQ(3, ctl(self->ctl, LOOP_CTL_ADD, -1));
	EXPECT_TRUE(loop_dev_is(3, 0));
	EXPECT_EQ(11, ctl(self->ctl, LOOP_CTL_ADD, -1));
	/* Free but above the lowest: an explicit index still gets it. */
	EXPECT_EQ(30, ctl(self->ctl, LOOP_CTL_ADD, 30));
	EXPECT_EQ(12, ctl(self->ctl, LOOP_CTL_ADD, -1));
}

/* loop_add(int i) gets the unsigned long argument truncated to int. */
CTL_TEST(add_argument_is_truncated_to_int)
{
	EXPECT_EQ(21, xioctl(self->ctl, LOOP_CTL_ADD, (unsigned long)(1ULL << 32 | 21)));
	EXPECT_TRUE(sys_block_has(21));
	/* 0xffffffff is -1: the lowest free index. */
	EXPECT_EQ(8, xioctl(self->ctl, LOOP_CTL_ADD, 0xffffffffUL));
	/* REMOVE truncates as well: 0x80000000 is negative. */
	EXPECT_EQ(-EINVAL, xioctl(self->ctl, LOOP_CTL_REMOVE, 0x80000000UL));
	EXPECT_EQ(0, xioctl(self->ctl, LOOP_CTL_REMOVE, (unsigned long)(1ULL << 32 | 21)));
	EXPECT_FALSE(sys_block_has(21));
}

/*
 * The minor is i << part_shift and add_disk() rejects minors beyond
 * MINORMASK with EINVAL; the failed ADD leaves nothing behind.
 */
CTL_TEST(add_beyond_minor_space_is_einval)
{
	int last = (1 << MINORBITS) - 1;

	EXPECT_EQ(-EINVAL, ctl(self->ctl, LOOP_CTL_ADD, 1 << MINORBITS));
	EXPECT_FALSE(sys_block_has(1 << MINORBITS));
	EXPECT_FALSE(dev_has(1 << MINORBITS));
	/* Not EEXIST: the index was given back. */
	EXPECT_EQ(-EINVAL, ctl(self->ctl, LOOP_CTL_ADD, 1 << MINORBITS));
	EXPECT_EQ(-EINVAL, ctl(self->ctl, LOOP_CTL_ADD, INT_MAX));
	EXPECT_EQ(-ENODEV, ctl(self->ctl, LOOP_CTL_REMOVE, 1 << MINORBITS));
	/* The last minor is fine. */
	ASSERT_EQ(last, ctl(self->ctl, LOOP_CTL_ADD, last));
	EXPECT_TRUE(loop_dev_is(last, 0));
	EXPECT_EQ(0, ctl(self->ctl, LOOP_CTL_REMOVE, last));
	EXPECT_FALSE(sys_block_has(last));
	EXPECT_FALSE(dev_has(last));
	/* Failed ADDs did not take the lowest free index either. */
	EXPECT_EQ(8, ctl(self->ctl, LOOP_CTL_ADD, -1));
}

/* ------------------------------------------------------------------ */
/* LOOP_CTL_REMOVE                                                      */

CTL_TEST(remove_deletes_device)
{
	ASSERT_TRUE(sys_block_has(5));
	EXPECT_EQ(0, ctl(self->ctl, LOOP_CTL_REMOVE, 5));
	EXPECT_FALSE(sys_block_has(5));
	EXPECT_FALSE(dev_has(5));
	EXPECT_EQ(-ENOENT, open_loop(5, O_RDONLY));
	/* The neighbours stay. */
	EXPECT_TRUE(sys_block_has(4));
	EXPECT_TRUE(sys_block_has(6));
	/* Twice: it is gone. */
	EXPECT_EQ(-ENODEV, ctl(self->ctl, LOOP_CTL_REMOVE, 5));
	/* It can be added again, same numbers. */
	EXPECT_EQ(5, ctl(self->ctl, LOOP_CTL_ADD, 5));
	EXPECT_TRUE(loop_dev_is(5, 0));
	/* A device made by ADD goes the same way. */
	ASSERT_EQ(40, ctl(self->ctl, LOOP_CTL_ADD, 40));
	EXPECT_EQ(0, ctl(self->ctl, LOOP_CTL_REMOVE, 40));
	EXPECT_FALSE(sys_block_has(40));
	EXPECT_FALSE(dev_has(40));
}

CTL_TEST(remove_negative_is_einval)
{
	EXPECT_EQ(-EINVAL, ctl(self->ctl, LOOP_CTL_REMOVE, -1));
	EXPECT_EQ(-EINVAL, ctl(self->ctl, LOOP_CTL_REMOVE, INT_MIN));
	/* Nothing was removed. */
	for (int i = 0; i < 8; i++) {
		EXPECT_TRUE(sys_block_has(i)) TH_LOG("loop%d", i);
	}
}

CTL_TEST(remove_absent_is_enodev)
{
	EXPECT_EQ(-ENODEV, ctl(self->ctl, LOOP_CTL_REMOVE, 8));
	EXPECT_EQ(-ENODEV, ctl(self->ctl, LOOP_CTL_REMOVE, 100));
	EXPECT_EQ(-ENODEV, ctl(self->ctl, LOOP_CTL_REMOVE, INT_MAX));
	EXPECT_FALSE(sys_block_has(8));
	EXPECT_FALSE(sys_block_has(100));
}

CTL_TEST(remove_open_device_is_ebusy)
{
	int fd = keep(self, open_loop(2, O_RDONLY));

	ASSERT_LE(0, fd);
	EXPECT_EQ(-EBUSY, ctl(self->ctl, LOOP_CTL_REMOVE, 2));
	EXPECT_TRUE(sys_block_has(2));
	EXPECT_TRUE(dev_has(2));
	/* Still visible after the refusal: ADD sees it, GET_FREE finds it. */
	EXPECT_EQ(-EEXIST, ctl(self->ctl, LOOP_CTL_ADD, 2));
	ASSERT_EQ(0, ctl(self->ctl, LOOP_CTL_REMOVE, 0));
	ASSERT_EQ(0, ctl(self->ctl, LOOP_CTL_REMOVE, 1));
	EXPECT_EQ(2, ctl(self->ctl, LOOP_CTL_GET_FREE, 0));
	/* Refused again while open; a second opener changes nothing. */
	{
		int fd2 = open_loop(2, O_RDWR);

		ASSERT_LE(0, fd2);
		EXPECT_EQ(-EBUSY, ctl(self->ctl, LOOP_CTL_REMOVE, 2));
		close(fd2);
	}
	EXPECT_EQ(-EBUSY, ctl(self->ctl, LOOP_CTL_REMOVE, 2));
	drop(self, fd);
	EXPECT_EQ(0, ctl(self->ctl, LOOP_CTL_REMOVE, 2));
	EXPECT_FALSE(sys_block_has(2));
	EXPECT_FALSE(dev_has(2));
}

CTL_TEST(remove_bound_device_is_ebusy)
{
	ASSERT_EQ(0, bind_loop(2, 1 << 20, false));
	ASSERT_TRUE(path_exists("/sys/block/loop2/loop/backing_file"));
	/* Bound, no opener: still refused. */
	EXPECT_EQ(-EBUSY, ctl(self->ctl, LOOP_CTL_REMOVE, 2));
	EXPECT_TRUE(sys_block_has(2));
	EXPECT_TRUE(path_exists("/sys/block/loop2/loop"));
	/* Still bound, still usable. */
	{
		int fd = open_loop(2, O_RDONLY);
		uint64_t sz = 0;

		ASSERT_LE(0, fd);
		EXPECT_EQ(0, xioctl(fd, BLKGETSIZE64, (unsigned long)&sz));
		EXPECT_EQ(1 << 20, sz);
		close(fd);
	}
	ASSERT_EQ(0, unbind_loop(2));
	EXPECT_FALSE(path_exists("/sys/block/loop2/loop"));
	EXPECT_EQ(0, ctl(self->ctl, LOOP_CTL_REMOVE, 2));
	EXPECT_FALSE(sys_block_has(2));
	EXPECT_FALSE(dev_has(2));
}

/* ------------------------------------------------------------------ */
/* LOOP_CTL_GET_FREE                                                    */

CTL_TEST(get_free_returns_lowest_unbound)
{
	/* The lowest existing unbound device; nothing is created. */
	EXPECT_EQ(0, ctl(self->ctl, LOOP_CTL_GET_FREE, 0));
	EXPECT_EQ(0, ctl(self->ctl, LOOP_CTL_GET_FREE, 0));
	EXPECT_FALSE(sys_block_has(8));
	/* The argument is ignored. */
	EXPECT_EQ(0, ctl(self->ctl, LOOP_CTL_GET_FREE, 5));
	EXPECT_EQ(0, ctl(self->ctl, LOOP_CTL_GET_FREE, -1));
	/* Open but unbound still counts as free. */
	keep(self, open_loop(0, O_RDONLY));
	EXPECT_EQ(0, ctl(self->ctl, LOOP_CTL_GET_FREE, 0));
	/* A bound device is skipped. */
	ASSERT_EQ(0, bind_loop(0, 1 << 20, false));
	EXPECT_EQ(1, ctl(self->ctl, LOOP_CTL_GET_FREE, 0));
	ASSERT_EQ(0, bind_loop(1, 1 << 20, false));
	EXPECT_EQ(2, ctl(self->ctl, LOOP_CTL_GET_FREE, 0));
	/* A removed device is skipped. */
	ASSERT_EQ(0, ctl(self->ctl, LOOP_CTL_REMOVE, 2));
	EXPECT_EQ(3, ctl(self->ctl, LOOP_CTL_GET_FREE, 0));
	/* Detached, it is the lowest free one again. */
	ASSERT_EQ(0, unbind_loop(1));
	EXPECT_EQ(1, ctl(self->ctl, LOOP_CTL_GET_FREE, 0));
	EXPECT_FALSE(sys_block_has(2));
	EXPECT_FALSE(sys_block_has(8));
}

CTL_TEST(get_free_creates_device_when_all_bound)
{
	for (int i = 0; i < 8; i++) {
		ASSERT_EQ(0, bind_loop(i, 1 << 20, false)) TH_LOG("loop%d", i);
	}
	EXPECT_FALSE(sys_block_has(8));
	EXPECT_EQ(8, ctl(self->ctl, LOOP_CTL_GET_FREE, 0));
	EXPECT_TRUE(sys_block_has(8));
	EXPECT_TRUE(loop_dev_is(8, 0));
	/* It exists now: asked again, the same one, nothing new. */
	EXPECT_EQ(8, ctl(self->ctl, LOOP_CTL_GET_FREE, 0));
	EXPECT_FALSE(sys_block_has(9));
	/*
	 * With a hole below, GET_FREE still prefers an existing unbound
	 * device (8) to creating the lowest free index (3).
	 */
	ASSERT_EQ(0, unbind_loop(3));
	ASSERT_EQ(0, ctl(self->ctl, LOOP_CTL_REMOVE, 3));
	EXPECT_EQ(8, ctl(self->ctl, LOOP_CTL_GET_FREE, 0));
	EXPECT_FALSE(sys_block_has(3));
	/* Once 8 is bound too, the new device takes the hole. */
	ASSERT_EQ(0, bind_loop(8, 1 << 20, false));
	EXPECT_EQ(3, ctl(self->ctl, LOOP_CTL_GET_FREE, 0));
	EXPECT_TRUE(loop_dev_is(3, 0));
	EXPECT_FALSE(sys_block_has(9));
}

CTL_TEST(get_free_creates_device_when_none_exist)
{
	for (int i = 0; i < 8; i++) {
		ASSERT_EQ(0, ctl(self->ctl, LOOP_CTL_REMOVE, i));
	}
	ASSERT_EQ(0, count_loop_entries("/sys/block"));
	EXPECT_EQ(0, ctl(self->ctl, LOOP_CTL_GET_FREE, 0));
	EXPECT_TRUE(loop_dev_is(0, 0));
	EXPECT_EQ(0, ctl(self->ctl, LOOP_CTL_GET_FREE, 0));
	EXPECT_FALSE(sys_block_has(1));
	/* An added device above a hole is found before the hole is filled. */
	ASSERT_EQ(0, ctl(self->ctl, LOOP_CTL_REMOVE, 0));
	ASSERT_EQ(5, ctl(self->ctl, LOOP_CTL_ADD, 5));
	EXPECT_EQ(5, ctl(self->ctl, LOOP_CTL_GET_FREE, 0));
	EXPECT_FALSE(sys_block_has(0));
}

/* ------------------------------------------------------------------ */
/* Other commands                                                       */

CTL_TEST(unknown_control_ioctl_is_enosys)
{
	EXPECT_EQ(-ENOSYS, xioctl(self->ctl, 0x4C83, 0));
	EXPECT_EQ(-ENOSYS, xioctl(self->ctl, 0x4C7F, 0));
	EXPECT_EQ(-ENOSYS, xioctl(self->ctl, _IO('L', 0x80) | 0x10000, 0));
	EXPECT_EQ(-ENOSYS, xioctl(self->ctl, _IOR('X', 1, int), 0));
	/* Device commands are not control commands. */
	EXPECT_EQ(-ENOSYS, xioctl(self->ctl, LOOP_SET_FD, 0));
	EXPECT_EQ(-ENOSYS, xioctl(self->ctl, LOOP_CLR_FD, 0));
	EXPECT_EQ(-ENOSYS, xioctl(self->ctl, LOOP_GET_STATUS64, 0));
	EXPECT_EQ(-ENOSYS, xioctl(self->ctl, BLKGETSIZE64, 0));
	/* Nothing happened. */
	EXPECT_FALSE(sys_block_has(8));
}

/*
 * loop_ctl_fops: nonseekable_open (lseek is ESPIPE), no read or write
 * (EINVAL from the VFS).
 */
CTL_TEST(control_device_file_ops)
{
	char buf[8];

	EXPECT_EQ(-1, lseek(self->ctl, 100, SEEK_SET));
	EXPECT_EQ(ESPIPE, errno);
	EXPECT_EQ(-1, read(self->ctl, buf, sizeof(buf)));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, write(self->ctl, buf, sizeof(buf)));
	EXPECT_EQ(EINVAL, errno);
}

/* ------------------------------------------------------------------ */
/* Per-device ioctls on an unbound device                               */

CTL_TEST(unbound_device_ioctls_are_enxio)
{
	struct loop_info64 i64;
	struct loop_info i32;
	int fd = keep(self, open_loop(0, O_RDWR));
	int bfd = keep(self, backing_file(1 << 20, false));

	ASSERT_LE(0, fd);
	ASSERT_LE(0, bfd);
	memset(&i64, 0, sizeof(i64));
	memset(&i32, 0, sizeof(i32));

	EXPECT_EQ(-ENXIO, xioctl(fd, LOOP_CLR_FD, 0));
	EXPECT_EQ(-ENXIO, xioctl(fd, LOOP_GET_STATUS64, (unsigned long)&i64));
	EXPECT_EQ(-ENXIO, xioctl(fd, LOOP_GET_STATUS, (unsigned long)&i32));
	EXPECT_EQ(-ENXIO, xioctl(fd, LOOP_SET_STATUS64, (unsigned long)&i64));
	EXPECT_EQ(-ENXIO, xioctl(fd, LOOP_SET_STATUS, (unsigned long)&i32));
	EXPECT_EQ(-ENXIO, xioctl(fd, LOOP_SET_CAPACITY, 0));
	EXPECT_EQ(-ENXIO, xioctl(fd, LOOP_SET_DIRECT_IO, 1));
	EXPECT_EQ(-ENXIO, xioctl(fd, LOOP_SET_DIRECT_IO, 0));
	EXPECT_EQ(-ENXIO, xioctl(fd, LOOP_SET_BLOCK_SIZE, 512));
	EXPECT_EQ(-ENXIO, xioctl(fd, LOOP_SET_BLOCK_SIZE, 4096));
	/* A good file, but nothing to change. */
	EXPECT_EQ(-ENXIO, xioctl(fd, LOOP_CHANGE_FD, bfd));
	/* Argument checks that come before the state check. */
	EXPECT_EQ(-EINVAL, xioctl(fd, LOOP_GET_STATUS64, 0));
	EXPECT_EQ(-EINVAL, xioctl(fd, LOOP_GET_STATUS, 0));
	EXPECT_EQ(-EFAULT, xioctl(fd, LOOP_SET_STATUS64, 0));
	EXPECT_EQ(-EFAULT, xioctl(fd, LOOP_SET_STATUS, 0));
	EXPECT_EQ(-EBADF, xioctl(fd, LOOP_CHANGE_FD, (unsigned long)-1));
	EXPECT_EQ(-EBADF, xioctl(fd, LOOP_CHANGE_FD, 1000));
	EXPECT_EQ(-EBADF, xioctl(fd, LOOP_SET_FD, (unsigned long)-1));
	EXPECT_EQ(-EBADF, xioctl(fd, LOOP_SET_FD, 1000));
	/* None of that bound it. */
	EXPECT_FALSE(path_exists("/sys/block/loop0/loop"));
	EXPECT_EQ(-ENXIO, xioctl(fd, LOOP_GET_STATUS64, (unsigned long)&i64));
}

/*
 * blkdev_ioctl() hands commands it does not know to lo_ioctl(), whose
 * default (lo_simple_ioctl()) answers EINVAL: not ENOTTY. A 32-bit caller
 * gets ENOTTY (UNKNOWN_LOOP_IOCTL_ERR).
 */
CTL_TEST(unknown_device_ioctl_is_einval)
{
	int fd = keep(self, open_loop(0, O_RDWR));
	int err = UNKNOWN_LOOP_IOCTL_ERR;

	ASSERT_LE(0, fd);
	EXPECT_EQ(err, xioctl(fd, 0x4CFF, 0));
	EXPECT_EQ(err, xioctl(fd, 0x4C0B, 0));
	/* Control commands are not device commands. */
	EXPECT_EQ(err, xioctl(fd, LOOP_CTL_ADD, 9));
	EXPECT_EQ(err, xioctl(fd, LOOP_CTL_GET_FREE, 0));
	EXPECT_EQ(err, xioctl(fd, LOOP_CTL_REMOVE, 1));
	EXPECT_FALSE(sys_block_has(9));
	EXPECT_TRUE(sys_block_has(1));
}

CTL_TEST(unbound_device_is_empty)
{
	char buf[4096];
	uint64_t sz = 1;
	unsigned long sectors = 1;
	int fd = keep(self, open_loop(0, O_RDWR));

	ASSERT_LE(0, fd);
	EXPECT_EQ(0, xioctl(fd, BLKGETSIZE64, (unsigned long)&sz));
	EXPECT_EQ(0, sz);
	EXPECT_EQ(0, xioctl(fd, BLKGETSIZE, (unsigned long)&sectors));
	EXPECT_EQ(0, sectors);
	ASSERT_EQ(0, loop_attr(0, "size", buf, sizeof(buf)));
	EXPECT_STREQ("0", buf);
	/* Reading is at the end at once; writing has no room. */
	EXPECT_EQ(0, read(fd, buf, sizeof(buf)));
	EXPECT_EQ(0, pread(fd, buf, 512, 0));
	EXPECT_EQ(-1, write(fd, buf, 512));
	EXPECT_EQ(ENOSPC, errno);
	EXPECT_EQ(0, lseek(fd, 0, SEEK_END));
	/* No loop attributes while unbound. */
	EXPECT_FALSE(path_exists("/sys/block/loop0/loop"));
	ASSERT_EQ(0, loop_attr(0, "ro", buf, sizeof(buf)));
	EXPECT_STREQ("0", buf);
}

/* ------------------------------------------------------------------ */
/* Creating a device by opening its node (loop_probe)                   */

CTL_TEST(open_of_absent_index_creates_it)
{
	char path[256];
	int fd;

	ASSERT_FALSE(sys_block_has(30));
	ASSERT_EQ(0, node(self, 30, path, sizeof(path)));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, fd) TH_LOG("open %s: %s", path, strerror(errno));
	EXPECT_TRUE(sys_block_has(30));
	EXPECT_TRUE(loop_dev_is(30, 0));
	/* An open device: REMOVE refuses it. */
	EXPECT_EQ(-EBUSY, ctl(self->ctl, LOOP_CTL_REMOVE, 30));
	close(fd);
	EXPECT_FALSE(sys_block_has(31));
	EXPECT_EQ(0, ctl(self->ctl, LOOP_CTL_REMOVE, 30));
	EXPECT_FALSE(sys_block_has(30));
	/* A removed pre-created index is recreated the same way. */
	ASSERT_EQ(0, ctl(self->ctl, LOOP_CTL_REMOVE, 4));
	ASSERT_EQ(0, node(self, 4, path, sizeof(path)));
	fd = open(path, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	close(fd);
	EXPECT_TRUE(loop_dev_is(4, 0));
	/* It is a device like any other. */
	EXPECT_EQ(-EEXIST, ctl(self->ctl, LOOP_CTL_ADD, 4));
}

/* An explicit max_loop=M caps what opening creates, not what ADD creates. */
CTL_TEST(open_beyond_max_loop_is_enxio)
{
	char path[256];
	int fd;

	ASSERT_EQ(0, reload(self, "max_loop=4"));
	for (int i = 0; i < 4; i++) {
		EXPECT_TRUE(loop_dev_is(i, 0)) TH_LOG("loop%d", i);
	}
	EXPECT_FALSE(sys_block_has(4));
	ASSERT_EQ(0, node(self, 4, path, sizeof(path)));
	EXPECT_EQ(-1, open(path, O_RDONLY | O_CLOEXEC));
	EXPECT_EQ(ENXIO, errno);
	EXPECT_FALSE(sys_block_has(4));
	ASSERT_EQ(0, node(self, 100, path, sizeof(path)));
	EXPECT_EQ(-1, open(path, O_RDONLY | O_CLOEXEC));
	EXPECT_EQ(ENXIO, errno);
	EXPECT_FALSE(sys_block_has(100));
	/* Below the cap, a removed index is recreated by opening it. */
	ASSERT_EQ(0, ctl(self->ctl, LOOP_CTL_REMOVE, 3));
	ASSERT_EQ(0, node(self, 3, path, sizeof(path)));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, fd);
	close(fd);
	EXPECT_TRUE(sys_block_has(3));
	/* LOOP_CTL_ADD is not capped. */
	EXPECT_EQ(10, ctl(self->ctl, LOOP_CTL_ADD, 10));
	EXPECT_EQ(4, ctl(self->ctl, LOOP_CTL_ADD, -1));
	/* Index 100's node still does not open... */
	ASSERT_EQ(0, node(self, 100, path, sizeof(path)));
	EXPECT_EQ(-1, open(path, O_RDONLY | O_CLOEXEC));
	EXPECT_EQ(ENXIO, errno);
	EXPECT_FALSE(sys_block_has(100));
	/* ...while the added 10 does, through devtmpfs. */
	fd = open_loop(10, O_RDONLY);
	EXPECT_LE(0, fd);
	if (fd >= 0)
		close(fd);
	{
		char buf[32];

		ASSERT_EQ(0, param_read("max_loop", buf, sizeof(buf)));
		EXPECT_STREQ("4", buf);
	}
}

/* ------------------------------------------------------------------ */
/* Module parameters                                                    */

CTL_TEST(max_loop_0_creates_no_device)
{
	char path[256];
	int fd;

	ASSERT_EQ(0, reload(self, "max_loop=0"));
	EXPECT_EQ(0, count_loop_entries("/sys/block"));
	/* Only the control node. */
	EXPECT_EQ(1, count_loop_entries("/dev"));
	EXPECT_TRUE(node_is("/dev/loop-control", false, MISC_MAJOR,
			    LOOP_CTRL_MINOR));
	/* max_loop=0 is no cap: opening a node creates its device. */
	ASSERT_EQ(0, node(self, 5, path, sizeof(path)));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, fd);
	close(fd);
	EXPECT_TRUE(loop_dev_is(5, 0));
	EXPECT_EQ(1, count_loop_entries("/sys/block"));
	/* GET_FREE finds it; then it creates index 0 once 5 is bound. */
	EXPECT_EQ(5, ctl(self->ctl, LOOP_CTL_GET_FREE, 0));
	ASSERT_EQ(0, bind_loop(5, 1 << 20, false));
	EXPECT_EQ(0, ctl(self->ctl, LOOP_CTL_GET_FREE, 0));
	EXPECT_TRUE(loop_dev_is(0, 0));
}

/* Slow: 300 disks to create, then to delete, under KASAN and TCG. */
TEST_F_TIMEOUT(ctl, max_loop_300_creates_300_devices, 1200)
{
	int *idx = calloc(1024, sizeof(int));
	int n;
	double t = now_s();

	if (getenv("RL_QUICK"))
		SKIP(return, "300 disks take about 90 s: not in the quick tier");

	ASSERT_NE(NULL, idx);
	ASSERT_EQ(0, reload(self, "max_loop=300"));
	TH_LOG("loaded with max_loop=300 in %.1f s", now_s() - t);
	EXPECT_TRUE(loop_dev_is(0, 0));
	EXPECT_TRUE(loop_dev_is(299, 0));
	EXPECT_FALSE(sys_block_has(300));
	EXPECT_FALSE(dev_has(300));
	n = list_loops("/sys/block", idx, 1024);
	ASSERT_EQ(300, n);
	for (int i = 0; i < n; i++) {
		ASSERT_EQ(i, idx[i]);
	}
	EXPECT_EQ(300, list_loops("/dev", idx, 1024));
	EXPECT_EQ(0, ctl(self->ctl, LOOP_CTL_GET_FREE, 0));
	free(idx);
	t = now_s();
	ASSERT_EQ(0, reload(self, NULL));
	TH_LOG("reloaded with defaults in %.1f s", now_s() - t);
	EXPECT_EQ(8, count_loop_entries("/sys/block"));
}

/*
 * max_part=N gives each device 1 << fls(N) minors (max_part is rounded up
 * to 2^k - 1): loopI is 7:16I for max_part=15, and partitions are scanned
 * when a device is bound.
 */
CTL_TEST(max_part_15_steps_minors_by_16)
{
	char buf[64];
	int fd;

	ASSERT_EQ(0, reload(self, "max_part=15"));
	for (int i = 0; i < 8; i++) {
		EXPECT_TRUE(loop_dev_is(i, 4)) TH_LOG("loop%d", i);
	}
	EXPECT_TRUE(node_is("/dev/loop1", true, LOOP_MAJOR, 16));
	ASSERT_EQ(0, loop_attr(1, "range", buf, sizeof(buf)));
	EXPECT_STREQ("16", buf);
	ASSERT_EQ(0, param_read("max_part", buf, sizeof(buf)));
	EXPECT_STREQ("15", buf);
	/* ADD numbers the same way, up to the end of the minor space. */
	ASSERT_EQ(20, ctl(self->ctl, LOOP_CTL_ADD, 20));
	EXPECT_TRUE(loop_dev_is(20, 4));
	EXPECT_EQ(-EINVAL, ctl(self->ctl, LOOP_CTL_ADD, 1 << (MINORBITS - 4)));
	EXPECT_EQ((1 << (MINORBITS - 4)) - 1,
		  ctl(self->ctl, LOOP_CTL_ADD, (1 << (MINORBITS - 4)) - 1));
	/* Binding a device with a partition table makes loopNp1, 7:16N+1. */
	ASSERT_EQ(0, bind_loop(1, 4 << 20, true));
	ASSERT_EQ(0, read_file("/sys/block/loop1/loop/partscan", buf,
			       sizeof(buf)));
	EXPECT_STREQ("1", buf);
	EXPECT_TRUE(path_exists("/sys/block/loop1/loop1p1"));
	EXPECT_TRUE(node_is("/dev/loop1p1", true, LOOP_MAJOR, 17));
	ASSERT_EQ(0, read_file("/sys/block/loop1/loop1p1/size", buf,
			       sizeof(buf)));
	EXPECT_STREQ("2048", buf);
	/* Detaching drops the partition. */
	ASSERT_EQ(0, unbind_loop(1));
	EXPECT_FALSE(path_exists("/sys/block/loop1/loop1p1"));
	EXPECT_FALSE(path_exists("/dev/loop1p1"));
	/*
	 * Opening a partition node of an absent device creates the device
	 * (loop_probe takes MINOR >> part_shift), but the open itself fails:
	 * the new device has no partition.
	 */
	ASSERT_EQ(0, ctl(self->ctl, LOOP_CTL_REMOVE, 5));
	{
		char path[256];

		ASSERT_EQ(0, node(self, 5 * 16 + 1, path, sizeof(path)));
		EXPECT_EQ(-1, open(path, O_RDONLY | O_CLOEXEC));
		EXPECT_EQ(ENXIO, errno);
		EXPECT_TRUE(loop_dev_is(5, 4));
		ASSERT_EQ(0, node(self, 6 * 16, path, sizeof(path)));
		ASSERT_EQ(0, ctl(self->ctl, LOOP_CTL_REMOVE, 6));
		fd = open(path, O_RDONLY | O_CLOEXEC);
		ASSERT_LE(0, fd);
		close(fd);
		EXPECT_TRUE(loop_dev_is(6, 4));
	}
}

/* Without max_part there is no partition scan when a device is bound. */
CTL_TEST(max_part_0_binds_without_partitions)
{
	char buf[64];
	int fd;

	ASSERT_EQ(0, bind_loop(1, 4 << 20, true));
	ASSERT_EQ(0, read_file("/sys/block/loop1/loop/partscan", buf,
			       sizeof(buf)));
	EXPECT_STREQ("0", buf);
	EXPECT_FALSE(path_exists("/sys/block/loop1/loop1p1"));
	EXPECT_FALSE(path_exists("/dev/loop1p1"));
	fd = open_loop(1, O_RDONLY);
	ASSERT_LE(0, fd);
	EXPECT_EQ(-EINVAL, xioctl(fd, BLKRRPART, 0));
	close(fd);
	EXPECT_FALSE(path_exists("/sys/block/loop1/loop1p1"));
}

CTL_TEST(max_part_rounds_up_and_caps_at_255)
{
	char buf[64];

	ASSERT_EQ(0, reload(self, "max_part=9"));
	ASSERT_EQ(0, param_read("max_part", buf, sizeof(buf)));
	EXPECT_STREQ("15", buf);
	EXPECT_TRUE(loop_dev_is(1, 4));
	ASSERT_EQ(0, reload(self, "max_part=1"));
	ASSERT_EQ(0, param_read("max_part", buf, sizeof(buf)));
	EXPECT_STREQ("1", buf);
	EXPECT_TRUE(loop_dev_is(3, 1));
	/* 255: 256 minors each, the most a disk can have. */
	ASSERT_EQ(0, reload(self, "max_part=255"));
	ASSERT_EQ(0, param_read("max_part", buf, sizeof(buf)));
	EXPECT_STREQ("255", buf);
	EXPECT_TRUE(loop_dev_is(1, 8));
	EXPECT_TRUE(node_is("/dev/loop7", true, LOOP_MAJOR, 7 * 256));
	EXPECT_EQ(-EINVAL, ctl(self->ctl, LOOP_CTL_ADD, 1 << (MINORBITS - 8)));
	/* Zero or negative: no partitions, one minor each. */
	ASSERT_EQ(0, reload(self, "max_part=-1"));
	EXPECT_TRUE(loop_dev_is(1, 0));
	EXPECT_TRUE(loop_dev_is(7, 0));
	ASSERT_EQ(0, loop_attr(1, "range", buf, sizeof(buf)));
	EXPECT_STREQ("1", buf);
}

/* Parameters loop_init() rejects: the load fails with EINVAL, no trace. */
CTL_TEST(bad_parameters_fail_to_load)
{
	static const char *const bad[] = {
		"max_part=256",		/* 512 minors > DISK_MAX_PARTS */
		"max_part=300",
		"max_loop=1048577",	/* > 1 << MINORBITS */
		"max_part=15 max_loop=65537",
		"max_loop=-1",		/* compared as unsigned long */
		"max_loop=abc",
		"hw_queue_depth=0",
		"hw_queue_depth=-1",
		"hw_queue_depth=abc",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		EXPECT_EQ(-EINVAL, reload(self, bad[i])) TH_LOG("%s", bad[i]);
		EXPECT_FALSE(drv_loaded()) TH_LOG("%s", bad[i]);
		EXPECT_FALSE(path_exists("/dev/loop-control")) TH_LOG("%s", bad[i]);
		EXPECT_FALSE(path_exists("/sys/class/misc/loop-control"));
		EXPECT_EQ(0, count_loop_entries("/sys/block")) TH_LOG("%s", bad[i]);
	}
	/* The limits themselves load (max_loop=65536 would make 65536 disks). */
	EXPECT_EQ(0, reload(self, "max_part=15 max_loop=2"));
	EXPECT_TRUE(loop_dev_is(1, 4));
	EXPECT_FALSE(sys_block_has(2));
}

CTL_TEST(hw_queue_depth_1_sizes_the_tag_set)
{
	char buf[64];

	/* Default: 128 tags, and no I/O scheduler. */
	ASSERT_EQ(0, loop_attr(0, "mq/0/nr_tags", buf, sizeof(buf)));
	EXPECT_STREQ("128", buf);
	ASSERT_EQ(0, loop_attr(0, "queue/nr_requests", buf, sizeof(buf)));
	EXPECT_STREQ("128", buf);
	ASSERT_EQ(0, loop_attr(0, "queue/scheduler", buf, sizeof(buf)));
	EXPECT_NE(NULL, strstr(buf, "[none]")) TH_LOG("scheduler: %s", buf);
	/*
	 * One hardware queue, as loop.c has; rust_loop's nr_hw_queues
	 * parameter (1 by default) gives more, 0 one per possible CPU.
	 */
	EXPECT_TRUE(path_exists("/sys/block/loop0/mq/0"));
	EXPECT_FALSE(path_exists("/sys/block/loop0/mq/1"));
	if (drv_is_rust()) {
		ASSERT_EQ(0, param_read("nr_hw_queues", buf, sizeof(buf)));
		EXPECT_STREQ("1", buf);
	}

	ASSERT_EQ(0, reload(self, "hw_queue_depth=1"));
	for (int i = 0; i < 8; i++) {
		ASSERT_EQ(0, loop_attr(i, "mq/0/nr_tags", buf, sizeof(buf)));
		EXPECT_STREQ("1", buf) TH_LOG("loop%d", i);
	}
	ASSERT_EQ(0, loop_attr(0, "queue/nr_requests", buf, sizeof(buf)));
	EXPECT_STREQ("1", buf);
	ASSERT_EQ(0, param_read("hw_queue_depth", buf, sizeof(buf)));
	EXPECT_STREQ("1", buf);
	/* Devices added later get the same depth. */
	ASSERT_EQ(9, ctl(self->ctl, LOOP_CTL_ADD, 9));
	ASSERT_EQ(0, loop_attr(9, "mq/0/nr_tags", buf, sizeof(buf)));
	EXPECT_STREQ("1", buf);
	/* And it works: I/O through a depth-1 queue. */
	{
		char data[4096];
		int fd;

		ASSERT_EQ(0, bind_loop(9, 1 << 20, false));
		fd = open_loop(9, O_RDONLY);
		ASSERT_LE(0, fd);
		EXPECT_EQ(4096, pread(fd, data, sizeof(data), 8192));
		close(fd);
	}
}

/* rust_loop's nr_hw_queues=0: one hardware queue per possible CPU. */
CTL_TEST(nr_hw_queues_0_gives_one_per_cpu)
{
	long cpus = sysconf(_SC_NPROCESSORS_CONF);
	char data[4096];
	int fd;

	if (!drv_is_rust())
		SKIP(return, "a parameter of rust_loop's only");
	ASSERT_EQ(0, reload(self, "nr_hw_queues=0"));
	EXPECT_TRUE(path_exists("/sys/block/loop0/mq/%ld", cpus - 1));
	EXPECT_FALSE(path_exists("/sys/block/loop0/mq/%ld", cpus));
	ASSERT_EQ(0, bind_loop(0, 1 << 20, false));
	fd = open_loop(0, O_RDONLY);
	ASSERT_LE(0, fd);
	EXPECT_EQ(4096, pread(fd, data, sizeof(data), 8192));
	close(fd);
}

/* ------------------------------------------------------------------ */
/* Module unload                                                        */

/*
 * delete_module() of a module in use fails with EWOULDBLOCK (EAGAIN,
 * try_stop_module()), not EBUSY: every open /dev/loopN (bdev_open() takes
 * lo_fops.owner) and /dev/loop-control (loop_ctl_fops.owner) holds a
 * reference. loop_exit() removes every device, however it was made.
 */
CTL_TEST(unload_refused_while_device_open)
{
	char buf[16], ref[128];
	int fd = keep(self, open_loop(3, O_RDONLY));

	ASSERT_LE(0, fd);
	snprintf(ref, sizeof(ref), "/sys/module/%s/refcnt", drv_name());
	/* /dev/loop-control (held by the fixture) and /dev/loop3. */
	ASSERT_EQ(0, read_file(ref, buf, sizeof(buf)));
	EXPECT_STREQ("2", buf);
	EXPECT_EQ(-EWOULDBLOCK, drv_unload());
	EXPECT_TRUE(drv_loaded());
	EXPECT_TRUE(sys_block_has(3));
	close(self->ctl);
	self->ctl = -1;
	EXPECT_EQ(-EWOULDBLOCK, drv_unload());
	ASSERT_EQ(0, read_file(ref, buf, sizeof(buf)));
	EXPECT_STREQ("1", buf);
	/* Closed: no reference left. */
	drop(self, fd);
	ASSERT_EQ(0, read_file(ref, buf, sizeof(buf)));
	EXPECT_STREQ("0", buf);
	EXPECT_EQ(0, drv_unload());
	EXPECT_FALSE(drv_loaded());
	/* Everything is gone. */
	EXPECT_EQ(0, count_loop_entries("/sys/block"));
	EXPECT_EQ(0, count_loop_entries("/dev"));
	EXPECT_FALSE(path_exists("/sys/class/misc/loop-control"));
}

CTL_TEST(unload_refused_while_control_open)
{
	EXPECT_EQ(-EWOULDBLOCK, drv_unload());
	EXPECT_TRUE(drv_loaded());
	EXPECT_TRUE(path_exists("/dev/loop-control"));
	close(self->ctl);
	self->ctl = -1;
	/* Devices added at run time go away with the module too. */
	{
		int fd = open_ctl();

		ASSERT_LE(0, fd);
		ASSERT_EQ(50, ctl(fd, LOOP_CTL_ADD, 50));
		ASSERT_EQ(0, ctl(fd, LOOP_CTL_REMOVE, 0));
		close(fd);
	}
	EXPECT_EQ(0, drv_unload());
	EXPECT_EQ(0, count_loop_entries("/sys/block"));
	EXPECT_EQ(0, count_loop_entries("/dev"));
}

/* ------------------------------------------------------------------ */
/* Concurrency                                                          */

#define STRESS_THREADS	6
#define STRESS_RANGE	16	/* ADD and open target 0..15 */
#define STRESS_RM_RANGE	24	/* REMOVE also reaches what ADD(-1) made */
/* Seconds of stress by tier (tier_count()): quick, make check, slow. */
#define STRESS_SECONDS	tier_count(3, 25, 300)

enum { S_ADD, S_ADD_ANY, S_REMOVE, S_GET_FREE, S_OPEN, S_NR };
static const char *const s_names[S_NR] = {
	"ADD", "ADD(-1)", "REMOVE", "GET_FREE", "open",
};

struct stress {
	int ctl;
	double deadline;
	/* [op][0]: calls, [1]: success, [2]: EEXIST/ENODEV/ENOENT, [3]: EBUSY/ENXIO */
	long count[S_NR][4];
	long illegal;
	pthread_mutex_t lock;
	char bad[8][160];
	int nbad;
};

static void stress_bad(struct stress *s, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&s->lock);
	s->illegal++;
	if (s->nbad < 8) {
		va_start(ap, fmt);
		vsnprintf(s->bad[s->nbad++], sizeof(s->bad[0]), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&s->lock);
}

static void stress_count(struct stress *s, int op, int kind)
{
	__atomic_add_fetch(&s->count[op][0], 1, __ATOMIC_RELAXED);
	if (kind)
		__atomic_add_fetch(&s->count[op][kind], 1, __ATOMIC_RELAXED);
}

struct stress_arg {
	struct stress *s;
	unsigned int seed;
	bool holder;
};

/*
 * Open /dev/loop@idx, check it is an unbound empty device, keep it open
 * for up to @hold_us, close it.
 */
static void stress_open(struct stress *s, int idx, int flags, int hold_us)
{
	struct loop_info64 info;
	uint64_t sz = 1;
	int fd = open_loop(idx, flags);
	long r;

	if (fd == -ENOENT) {
		stress_count(s, S_OPEN, 2);
		return;
	}
	if (fd == -ENXIO) {
		stress_count(s, S_OPEN, 3);
		return;
	}
	if (fd < 0) {
		stress_bad(s, "open loop%d = %d", idx, fd);
		return;
	}
	stress_count(s, S_OPEN, 1);
	/* Nobody binds: an open device is unbound and empty. */
	r = xioctl(fd, BLKGETSIZE64, (unsigned long)&sz);
	if (r || sz)
		stress_bad(s, "loop%d BLKGETSIZE64 = %ld, %llu", idx, r,
			   (unsigned long long)sz);
	r = xioctl(fd, LOOP_GET_STATUS64, (unsigned long)&info);
	if (r != -ENXIO)
		stress_bad(s, "loop%d GET_STATUS64 = %ld", idx, r);
	if (hold_us)
		usleep(hold_us);
	if (close(fd))
		stress_bad(s, "close loop%d: %d", idx, errno);
}

static void *stress_thread(void *p)
{
	struct stress_arg *a = p;
	struct stress *s = a->s;
	unsigned int seed = a->seed;

	while (now_s() < s->deadline) {
		int op = rand_r(&seed) % 100;
		int idx = rand_r(&seed) % STRESS_RANGE;
		long r;

		/* One thread keeps devices open for a while: REMOVE meets EBUSY. */
		if (a->holder) {
			stress_open(s, idx, O_RDONLY, 100000 + rand_r(&seed) % 150000);
			continue;
		}
		if (op < 30) {
			r = ctl(s->ctl, LOOP_CTL_ADD, idx);
			if (r == idx)
				stress_count(s, S_ADD, 1);
			else if (r == -EEXIST)
				stress_count(s, S_ADD, 2);
			else
				stress_bad(s, "ADD(%d) = %ld", idx, r);
		} else if (op < 33) {
			r = ctl(s->ctl, LOOP_CTL_ADD, -1);
			if (r >= 0)
				stress_count(s, S_ADD_ANY, 1);
			else
				stress_bad(s, "ADD(-1) = %ld", r);
		} else if (op < 63) {
			idx = rand_r(&seed) % STRESS_RM_RANGE;
			r = ctl(s->ctl, LOOP_CTL_REMOVE, idx);
			if (r == 0)
				stress_count(s, S_REMOVE, 1);
			else if (r == -ENODEV)
				stress_count(s, S_REMOVE, 2);
			else if (r == -EBUSY)
				stress_count(s, S_REMOVE, 3);
			else
				stress_bad(s, "REMOVE(%d) = %ld", idx, r);
		} else if (op < 73) {
			r = ctl(s->ctl, LOOP_CTL_GET_FREE, 0);
			if (r >= 0)
				stress_count(s, S_GET_FREE, 1);
			else
				stress_bad(s, "GET_FREE = %ld", r);
		} else {
			stress_open(s, idx, rand_r(&seed) % 2 ? O_RDWR : O_RDONLY,
				    rand_r(&seed) % 4 ? 0 : rand_r(&seed) % 2000);
		}
	}
	return NULL;
}

TEST_F_TIMEOUT(ctl, concurrent_add_remove_get_free_open, 900)
{
	struct stress *s = calloc(1, sizeof(*s));
	struct stress_arg args[STRESS_THREADS];
	pthread_t th[STRESS_THREADS];
	int *sys = calloc(4096, sizeof(int)), *dev = calloc(4096, sizeof(int));
	int nsys, ndev;

	ASSERT_NE(NULL, s);
	ASSERT_NE(NULL, sys);
	ASSERT_NE(NULL, dev);
	s->ctl = self->ctl;
	s->deadline = now_s() + STRESS_SECONDS;
	pthread_mutex_init(&s->lock, NULL);
	for (int i = 0; i < STRESS_THREADS; i++) {
		args[i].s = s;
		args[i].seed = 0x5eed + 7919 * i + (unsigned int)time(NULL);
		args[i].holder = i == 0;
		ASSERT_EQ(0, pthread_create(&th[i], NULL, stress_thread, &args[i]));
	}
	for (int i = 0; i < STRESS_THREADS; i++)
		pthread_join(th[i], NULL);

	for (int op = 0; op < S_NR; op++)
		TH_LOG("%-8s %6ld calls: %6ld ok, %6ld %s, %6ld %s", s_names[op],
		       s->count[op][0], s->count[op][1], s->count[op][2],
		       op == S_OPEN ? "ENOENT" : op == S_REMOVE ? "ENODEV" : "EEXIST",
		       s->count[op][3], op == S_OPEN ? "ENXIO" : "EBUSY");
	for (int i = 0; i < s->nbad; i++)
		TH_LOG("illegal result: %s", s->bad[i]);
	EXPECT_EQ(0, s->illegal);
	/* Every kind of operation really ran, and succeeded sometimes. */
	for (int op = 0; op < S_NR; op++) {
		EXPECT_LT(0, s->count[op][1]) TH_LOG("%s never succeeded",
						     s_names[op]);
	}
	/* The threads met: each refusal was seen. */
	EXPECT_LT(0, s->count[S_ADD][2]);	/* EEXIST */
	EXPECT_LT(0, s->count[S_REMOVE][2]);	/* ENODEV */
	EXPECT_LT(0, s->count[S_REMOVE][3]);	/* EBUSY */
	EXPECT_LT(0, s->count[S_OPEN][2]);	/* ENOENT */

	/* What is left is consistent: sysfs and devtmpfs agree. */
	nsys = list_loops("/sys/block", sys, 4096);
	ndev = list_loops("/dev", dev, 4096);
	ASSERT_LE(0, nsys);
	ASSERT_EQ(nsys, ndev);
	for (int i = 0; i < nsys; i++) {
		ASSERT_EQ(sys[i], dev[i]) TH_LOG("sysfs loop%d, /dev loop%d",
						 sys[i], dev[i]);
	}
	TH_LOG("%d devices left", nsys);
	/* Each one is a working, unbound, removable device. */
	for (int i = 0; i < nsys; i++) {
		int fd;

		EXPECT_TRUE(loop_dev_is(sys[i], 0)) TH_LOG("loop%d", sys[i]);
		fd = open_loop(sys[i], O_RDONLY);
		EXPECT_LE(0, fd) TH_LOG("loop%d", sys[i]);
		if (fd >= 0)
			close(fd);
		EXPECT_EQ(-EEXIST, ctl(self->ctl, LOOP_CTL_ADD, sys[i]));
		EXPECT_EQ(0, ctl(self->ctl, LOOP_CTL_REMOVE, sys[i]))
			TH_LOG("loop%d", sys[i]);
	}
	EXPECT_EQ(0, count_loop_entries("/sys/block"));
	EXPECT_EQ(1, count_loop_entries("/dev"));	/* loop-control */
	/* And the driver still works from a clean state. */
	EXPECT_EQ(0, ctl(self->ctl, LOOP_CTL_GET_FREE, 0));
	EXPECT_TRUE(loop_dev_is(0, 0));
	free(sys);
	free(dev);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

TEST_HARNESS_MAIN
