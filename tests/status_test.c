// SPDX-License-Identifier: GPL-2.0
/*
 * Reconfiguring a bound device, with loop.c's exact results: LOOP_SET_STATUS
 * and LOOP_SET_STATUS64 (offset, size limit, name, the settable and
 * clearable flags, the permission check, EINVAL/EOVERFLOW), LOOP_GET_STATUS
 * (the old structure and its EOVERFLOW), LOOP_CHANGE_FD, LOOP_SET_CAPACITY,
 * LOOP_SET_DIRECT_IO, LOOP_SET_BLOCK_SIZE (sizes and the exclusive claim),
 * BLKPG partitions and the change uevents of attach and detach.
 *
 * loop.c 7.3's loop_set_status, loop_get_status_old, loop_change_fd,
 * loop_set_capacity, loop_set_dio, loop_set_block_size and lo_ioctl are the
 * specification; every test runs against both drivers.
 */
#include "common.h"

#include <poll.h>
#include <pthread.h>
#include <time.h>
#include <sys/socket.h>
#include <linux/blkpg.h>
#include <linux/capability.h>
#include <linux/netlink.h>

#include "kselftest_harness.h"

#include "bind.h"

/* Bind slot @s to @file (opened O_RDWR) with @flags; 0 or -errno. */
static int bind_file(struct __test_metadata *_metadata,
		     FIXTURE_DATA(cfg) *self, int s, const char *file,
		     __u32 flags)
{
	int ffd = xopen(_metadata, file, O_RDWR), ret;

	ret = configure(self->fd[s], ffd, flags, 0, 0, 0);
	close(ffd);
	return ret;
}

static int set_status64(int fd, const struct loop_info64 *info)
{
	return ioctl(fd, LOOP_SET_STATUS64, info) ? -errno : 0;
}

static int xioctl(int fd, unsigned long cmd, unsigned long arg)
{
	return ioctl(fd, cmd, arg) ? -errno : 0;
}

static long long lbs(int idx)
{
	return loop_sysfs_ll(idx, "queue/logical_block_size");
}

/* Size in sectors of partition @n of loop@idx, or -errno. */
static long long part_size(int idx, int n)
{
	char attr[64];

	snprintf(attr, sizeof(attr), "loop%dp%d/size", idx, n);
	return loop_sysfs_ll(idx, attr);
}

/* ---------------------------------------------------------------- */

/*
 * SET_STATUS64 changes offset and size limit of a bound device: the size
 * is recomputed, GET_STATUS64 and sysfs show the new values and the data
 * moves with the offset (the page cache of the device was invalidated).
 */
TEST_F(cfg, set_status64_offset_sizelimit)
{
	const char *f = mkfile(_metadata, self, MIB, 5);
	int s = get_dev(_metadata, self, O_RDWR), idx = self->idx[s];
	unsigned char buf[4096];
	struct loop_info64 info;

	ASSERT_EQ(0, bind_file(_metadata, self, s, f, 0));
	/* Read through the page cache of the device first. */
	ASSERT_EQ(4096, pread(self->fd[s], buf, 4096, 0));
	EXPECT_TRUE(check(buf, 4096, 0, 5));

	ASSERT_EQ(0, get_status(self->fd[s], &info));
	info.lo_offset = 8192;
	info.lo_sizelimit = 65536;
	ASSERT_EQ(0, set_status64(self->fd[s], &info));
	EXPECT_EQ(128, loop_sysfs_ll(idx, "size"));
	EXPECT_EQ(65536, blk_size64(self->fd[s]));
	EXPECT_EQ(8192, loop_sysfs_ll(idx, "loop/offset"));
	EXPECT_EQ(65536, loop_sysfs_ll(idx, "loop/sizelimit"));
	ASSERT_EQ(0, get_status(self->fd[s], &info));
	EXPECT_EQ(8192, (long long)info.lo_offset);
	EXPECT_EQ(65536, (long long)info.lo_sizelimit);
	ASSERT_EQ(4096, pread(self->fd[s], buf, 4096, 0));
	EXPECT_TRUE(check(buf, 4096, 8192, 5));
	/* Nothing past the size limit. */
	EXPECT_EQ(0, pread(self->fd[s], buf, 4096, 65536));

	/* Both back to 0: the whole file again. */
	info.lo_offset = 0;
	info.lo_sizelimit = 0;
	ASSERT_EQ(0, set_status64(self->fd[s], &info));
	EXPECT_EQ(MIB / 512, loop_sysfs_ll(idx, "size"));
	ASSERT_EQ(4096, pread(self->fd[s], buf, 4096, 0));
	EXPECT_TRUE(check(buf, 4096, 0, 5));

	/* An offset past the end of the file: size 0, still bound. */
	info.lo_offset = 2 * MIB;
	ASSERT_EQ(0, set_status64(self->fd[s], &info));
	EXPECT_EQ(0, loop_sysfs_ll(idx, "size"));
	ASSERT_EQ(0, get_status(self->fd[s], &info));
	EXPECT_EQ(2 * MIB, (long long)info.lo_offset);
}

/*
 * Only AUTOCLEAR and PARTSCAN can be set, only AUTOCLEAR cleared; the
 * other flags in lo_flags are ignored. The file name is replaced (and
 * NUL-terminated by the driver).
 */
TEST_F(cfg, set_status64_flags_and_name)
{
	const char *f = mkfile(_metadata, self, MIB, 0);
	int s = get_dev(_metadata, self, O_RDWR), idx = self->idx[s];
	struct loop_info64 info;
	char name[256];

	ASSERT_EQ(0, bind_file(_metadata, self, s, f, 0));
	ASSERT_EQ(0, get_status(self->fd[s], &info));
	ASSERT_EQ(0, (int)info.lo_flags);

	info.lo_flags = LO_FLAGS_READ_ONLY | LO_FLAGS_DIRECT_IO | LO_FLAGS_AUTOCLEAR;
	ASSERT_EQ(0, set_status64(self->fd[s], &info));
	ASSERT_EQ(0, get_status(self->fd[s], &info));
	EXPECT_EQ(LO_FLAGS_AUTOCLEAR, (int)info.lo_flags);
	EXPECT_EQ(1, loop_sysfs_ll(idx, "loop/autoclear"));
	EXPECT_EQ(0, loop_sysfs_ll(idx, "ro"));
	EXPECT_EQ(0, loop_sysfs_ll(idx, "loop/dio"));

	info.lo_flags = LO_FLAGS_PARTSCAN;
	ASSERT_EQ(0, set_status64(self->fd[s], &info));
	ASSERT_EQ(0, get_status(self->fd[s], &info));
	EXPECT_EQ(LO_FLAGS_PARTSCAN, (int)info.lo_flags);
	EXPECT_EQ(0, loop_sysfs_ll(idx, "loop/autoclear"));
	EXPECT_EQ(1, loop_sysfs_ll(idx, "loop/partscan"));

	/* PARTSCAN stays once set. */
	info.lo_flags = 0;
	memset(info.lo_file_name, 'x', sizeof(info.lo_file_name));
	ASSERT_EQ(0, set_status64(self->fd[s], &info));
	ASSERT_EQ(0, get_status(self->fd[s], &info));
	EXPECT_EQ(LO_FLAGS_PARTSCAN, (int)info.lo_flags);
	EXPECT_EQ(LO_NAME_SIZE - 1, (int)strnlen((char *)info.lo_file_name,
						 LO_NAME_SIZE));
	EXPECT_EQ('x', (int)info.lo_file_name[0]);
	/* The sysfs backing_file is the file's path, not lo_file_name. */
	ASSERT_EQ(0, loop_sysfs_read(idx, "loop/backing_file", name, sizeof(name)));
	EXPECT_STREQ(f, name);
}

/* Setting PARTSCAN on a bound device scans the table before returning. */
TEST_F(cfg, set_status64_partscan_scans)
{
	const char *f = mkfile(_metadata, self, 8 * MIB, 0);
	int s = get_dev(_metadata, self, O_RDWR), idx = self->idx[s];
	struct loop_info64 info;

	ASSERT_EQ(0, run("printf 'label: dos\\nstart=2048, size=4096, type=83\\n' | "
			 "sfdisk -q %s", f));
	ASSERT_EQ(0, bind_file(_metadata, self, s, f, 0));
	EXPECT_FALSE(path_exists("/sys/block/loop%d/loop%dp1", idx, idx));
	ASSERT_EQ(0, get_status(self->fd[s], &info));
	info.lo_flags = LO_FLAGS_PARTSCAN;
	ASSERT_EQ(0, set_status64(self->fd[s], &info));
	EXPECT_EQ(4096, part_size(idx, 1));
	detach(_metadata, self, s);
	EXPECT_FALSE(path_exists("/sys/block/loop%d/loop%dp1", idx, idx));
}

/*
 * Invalid SET_STATUS64 input changes nothing: a key size over 32 or any
 * encryption type is EINVAL, an offset or size limit over LLONG_MAX is
 * EOVERFLOW, a NULL argument EFAULT.
 */
TEST_F(cfg, set_status64_errors)
{
	const char *f = mkfile(_metadata, self, MIB, 0);
	int s = get_dev(_metadata, self, O_RDWR), idx = self->idx[s];
	struct loop_info64 info, bad;

	ASSERT_EQ(0, bind_file(_metadata, self, s, f, 0));
	ASSERT_EQ(0, get_status(self->fd[s], &info));
	info.lo_offset = 4096;
	ASSERT_EQ(0, set_status64(self->fd[s], &info));

	bad = info;
	bad.lo_offset = 0;
	bad.lo_encrypt_key_size = LO_KEY_SIZE + 1;
	EXPECT_EQ(-EINVAL, set_status64(self->fd[s], &bad));
	bad.lo_encrypt_key_size = 0;
	bad.lo_encrypt_type = 1;	/* LO_CRYPT_XOR */
	EXPECT_EQ(-EINVAL, set_status64(self->fd[s], &bad));
	bad.lo_encrypt_type = 18;	/* LO_CRYPT_CRYPTOAPI */
	EXPECT_EQ(-EINVAL, set_status64(self->fd[s], &bad));
	bad.lo_encrypt_type = 7;
	EXPECT_EQ(-EINVAL, set_status64(self->fd[s], &bad));
	bad.lo_encrypt_type = 0;
	bad.lo_offset = (__u64)LLONG_MAX + 1;
	EXPECT_EQ(-EOVERFLOW, set_status64(self->fd[s], &bad));
	bad.lo_offset = 0;
	bad.lo_sizelimit = ~0ULL;
	EXPECT_EQ(-EOVERFLOW, set_status64(self->fd[s], &bad));
	EXPECT_EQ(-EFAULT, xioctl(self->fd[s], LOOP_SET_STATUS64, 0));
	EXPECT_EQ(-EFAULT, xioctl(self->fd[s], LOOP_SET_STATUS, 0));
	/* A key within the limit with no encryption is accepted. */
	bad = info;
	bad.lo_encrypt_key_size = LO_KEY_SIZE;
	EXPECT_EQ(0, set_status64(self->fd[s], &bad));

	ASSERT_EQ(0, get_status(self->fd[s], &bad));
	EXPECT_EQ(4096, (long long)bad.lo_offset);
	EXPECT_EQ(0, (long long)bad.lo_sizelimit);
	EXPECT_EQ((MIB - 4096) / 512, loop_sysfs_ll(idx, "size"));
	/* An unknown ioctl is EINVAL, as lo_simple_ioctl answers it. */
	EXPECT_EQ((int)UNKNOWN_LOOP_IOCTL_ERR, xioctl(self->fd[s], 0x4C7F, 0));
}

/*
 * The old LOOP_SET_STATUS resets the size limit (loop_info has none);
 * LOOP_GET_STATUS reports what fits and EOVERFLOW for an offset over
 * INT_MAX, where GET_STATUS64 still works.
 */
TEST_F(cfg, old_status)
{
	const char *f = mkfile(_metadata, self, 4LL << 30, 0);
	int s = get_dev(_metadata, self, O_RDWR), idx = self->idx[s];
	struct loop_info64 info;
	struct loop_info old;
	struct stat st;

	ASSERT_EQ(0, stat(f, &st));
	ASSERT_EQ(0, bind_file(_metadata, self, s, f, 0));
	ASSERT_EQ(0, get_status(self->fd[s], &info));
	info.lo_sizelimit = MIB;
	snprintf((char *)info.lo_file_name, LO_NAME_SIZE, "name64");
	ASSERT_EQ(0, set_status64(self->fd[s], &info));
	EXPECT_EQ(MIB / 512, loop_sysfs_ll(idx, "size"));

	memset(&old, 0xa5, sizeof(old));
	ASSERT_EQ(0, xioctl(self->fd[s], LOOP_GET_STATUS, (unsigned long)&old));
	EXPECT_EQ(idx, old.lo_number);
	EXPECT_EQ(0, old.lo_offset);
	EXPECT_EQ(0, old.lo_flags);
	EXPECT_EQ(0, old.lo_encrypt_type);
	EXPECT_EQ(0, old.lo_encrypt_key_size);
	EXPECT_EQ(st.st_ino, old.lo_inode);
	EXPECT_EQ(enc_dev(st.st_dev), (__u64)old.lo_device);
	EXPECT_EQ(0, (long long)old.lo_rdevice);
	EXPECT_STREQ("name64", old.lo_name);
	EXPECT_TRUE(all_zero(old.lo_encrypt_key, sizeof(old.lo_encrypt_key)));
	EXPECT_TRUE(all_zero(old.reserved, sizeof(old.reserved)));

	old.lo_offset = 512;
	old.lo_flags = LO_FLAGS_AUTOCLEAR;
	ASSERT_EQ(0, xioctl(self->fd[s], LOOP_SET_STATUS, (unsigned long)&old));
	ASSERT_EQ(0, get_status(self->fd[s], &info));
	EXPECT_EQ(512, (long long)info.lo_offset);
	EXPECT_EQ(0, (long long)info.lo_sizelimit);
	EXPECT_EQ(LO_FLAGS_AUTOCLEAR, (int)info.lo_flags);
	EXPECT_EQ((4LL << 30) / 512 - 1, loop_sysfs_ll(idx, "size"));

	/* An offset that does not fit in an int. */
	info.lo_offset = 3LL << 30;
	info.lo_flags = 0;
	ASSERT_EQ(0, set_status64(self->fd[s], &info));
	EXPECT_EQ(-EOVERFLOW, xioctl(self->fd[s], LOOP_GET_STATUS,
				     (unsigned long)&old));
	ASSERT_EQ(0, get_status(self->fd[s], &info));
	EXPECT_EQ(3LL << 30, (long long)info.lo_offset);
	EXPECT_EQ((1LL << 30) / 512, loop_sysfs_ll(idx, "size"));
}

/* The capability set of this process without CAP_SYS_ADMIN. */
static int drop_sys_admin(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d))
		return -errno;
	d[CAP_SYS_ADMIN / 32].effective &= ~(1u << (CAP_SYS_ADMIN % 32));
	return syscall(SYS_capset, &h, d) ? -errno : 0;
}

/*
 * Without write mode, SET_STATUS(64), SET_BLOCK_SIZE, SET_CAPACITY and
 * SET_DIRECT_IO need CAP_SYS_ADMIN (EPERM); GET_STATUS64 does not.
 */
TEST_F(cfg, set_ioctls_need_write_or_sys_admin)
{
	const char *f = mkfile(_metadata, self, MIB, 0);
	int s = get_dev(_metadata, self, O_RDWR), idx = self->idx[s];
	int ro = loop_open(idx, O_RDONLY), status;
	struct loop_info64 info;
	pid_t pid;

	ASSERT_LE(0, ro);
	ASSERT_EQ(0, bind_file(_metadata, self, s, f, 0));
	ASSERT_EQ(0, get_status(ro, &info));
	/* With CAP_SYS_ADMIN a read-only opener may. */
	ASSERT_EQ(0, set_status64(ro, &info));
	ASSERT_EQ(0, xioctl(ro, LOOP_SET_CAPACITY, 0));

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct loop_info old;
		int bad = 0;

		if (drop_sys_admin())
			_exit(100);
		bad |= (set_status64(ro, &info) != -EPERM) << 0;
		bad |= (xioctl(ro, LOOP_SET_STATUS, (unsigned long)&old) != -EPERM) << 1;
		bad |= (xioctl(ro, LOOP_SET_BLOCK_SIZE, 4096) != -EPERM) << 2;
		bad |= (xioctl(ro, LOOP_SET_CAPACITY, 0) != -EPERM) << 3;
		bad |= (xioctl(ro, LOOP_SET_DIRECT_IO, 0) != -EPERM) << 4;
		bad |= (get_status(ro, &info) != 0) << 5;
		/* A writable opener needs no capability. */
		bad |= (set_status64(self->fd[s], &info) != 0) << 6;
		bad |= (xioctl(self->fd[s], LOOP_SET_CAPACITY, 0) != 0) << 7;
		_exit(bad);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status)) TH_LOG("failed checks: %#x",
						  WEXITSTATUS(status));
	close(ro);
}

/*
 * LOOP_CHANGE_FD swaps the file of a read-only device for one of the same
 * size: EINVAL on a writable device or another size, EBADF for a bad
 * descriptor or the device itself, EINVAL for a directory.
 */
TEST_F(cfg, change_fd)
{
	const char *a = mkfile(_metadata, self, MIB, 1);
	const char *b = mkfile(_metadata, self, MIB, 2);
	const char *c = mkfile(_metadata, self, 2 * MIB, 3);
	int s = get_dev(_metadata, self, O_RDWR), idx = self->idx[s];
	int bfd = xopen(_metadata, b, O_RDONLY), cfd, dfd, ffd;
	unsigned char buf[4096], *dbuf;
	char name[256];

	/* A writable device: EINVAL. */
	ASSERT_EQ(0, bind_file(_metadata, self, s, a, 0));
	EXPECT_EQ(-EINVAL, xioctl(self->fd[s], LOOP_CHANGE_FD, bfd));
	detach(_metadata, self, s);

	ASSERT_EQ(0, bind_file(_metadata, self, s, a, LO_FLAGS_READ_ONLY));
	ASSERT_EQ(4096, pread(self->fd[s], buf, 4096, 4096));
	EXPECT_TRUE(check(buf, 4096, 4096, 1));

	cfd = xopen(_metadata, c, O_RDONLY);
	EXPECT_EQ(-EINVAL, xioctl(self->fd[s], LOOP_CHANGE_FD, cfd));
	close(cfd);
	EXPECT_EQ(-EBADF, xioctl(self->fd[s], LOOP_CHANGE_FD, 999));
	EXPECT_EQ(-EBADF, xioctl(self->fd[s], LOOP_CHANGE_FD, self->fd[s]));
	dfd = xopen(_metadata, scratch_dir(), O_RDONLY | O_DIRECTORY);
	EXPECT_EQ(-EINVAL, xioctl(self->fd[s], LOOP_CHANGE_FD, dfd));
	close(dfd);
	ASSERT_EQ(0, loop_sysfs_read(idx, "loop/backing_file", name, sizeof(name)));
	EXPECT_STREQ(a, name);

	/* The swap: the data of the new file, through the device's cache. */
	ASSERT_EQ(0, xioctl(self->fd[s], LOOP_CHANGE_FD, bfd));
	close(bfd);
	ASSERT_EQ(0, loop_sysfs_read(idx, "loop/backing_file", name, sizeof(name)));
	EXPECT_STREQ(b, name);
	ASSERT_EQ(4096, pread(self->fd[s], buf, 4096, 4096));
	EXPECT_TRUE(check(buf, 4096, 4096, 2));
	ffd = loop_open(idx, O_RDONLY | O_DIRECT);
	ASSERT_LE(0, ffd);
	ASSERT_EQ(0, posix_memalign((void **)&dbuf, 4096, 4096));
	ASSERT_EQ(4096, pread(ffd, dbuf, 4096, 65536));
	EXPECT_TRUE(check(dbuf, 4096, 65536, 2));
	free(dbuf);
	close(ffd);
	EXPECT_EQ(1, loop_sysfs_ll(idx, "ro"));
	EXPECT_EQ(MIB / 512, loop_sysfs_ll(idx, "size"));
}

/*
 * LOOP_SET_CAPACITY picks up a grown or shrunk file, within the size
 * limit; the size does not change before it.
 */
TEST_F(cfg, set_capacity)
{
	const char *f = mkfile(_metadata, self, MIB, 0);
	int s = get_dev(_metadata, self, O_RDWR), idx = self->idx[s];
	int t = get_dev(_metadata, self, O_RDWR);
	int ffd = xopen(_metadata, f, O_RDWR);

	ASSERT_EQ(0, configure(self->fd[s], ffd, 0, 0, 0, 0));
	ASSERT_EQ(0, configure(self->fd[t], ffd, 0, 0, 3 * MIB, 0));
	ASSERT_EQ(0, ftruncate(ffd, 4 * MIB));
	EXPECT_EQ(MIB / 512, loop_sysfs_ll(idx, "size"));
	EXPECT_EQ(MIB, blk_size64(self->fd[s]));
	ASSERT_EQ(0, xioctl(self->fd[s], LOOP_SET_CAPACITY, 0));
	EXPECT_EQ(4 * MIB / 512, loop_sysfs_ll(idx, "size"));
	EXPECT_EQ(4 * MIB, blk_size64(self->fd[s]));
	ASSERT_EQ(0, xioctl(self->fd[t], LOOP_SET_CAPACITY, 0));
	EXPECT_EQ(3 * MIB, blk_size64(self->fd[t]));

	ASSERT_EQ(0, ftruncate(ffd, MIB / 2));
	ASSERT_EQ(0, xioctl(self->fd[s], LOOP_SET_CAPACITY, 0));
	EXPECT_EQ(MIB / 2, blk_size64(self->fd[s]));
	ASSERT_EQ(0, xioctl(self->fd[t], LOOP_SET_CAPACITY, 0));
	EXPECT_EQ(MIB / 2, blk_size64(self->fd[t]));
	close(ffd);
}

/*
 * LOOP_SET_DIRECT_IO turns direct I/O on and off (0 if unchanged), and
 * refuses it (EINVAL) where the offset is not aligned for it; data is the
 * same either way.
 */
TEST_F(cfg, set_direct_io)
{
	const char *f = mkfile(_metadata, self, MIB, 4);
	int s = get_dev(_metadata, self, O_RDWR), idx = self->idx[s];
	unsigned char buf[4096];
	struct loop_info64 info;

	ASSERT_EQ(0, bind_file(_metadata, self, s, f, 0));
	EXPECT_EQ(0, xioctl(self->fd[s], LOOP_SET_DIRECT_IO, 0));
	ASSERT_EQ(0, xioctl(self->fd[s], LOOP_SET_DIRECT_IO, 1));
	ASSERT_EQ(0, get_status(self->fd[s], &info));
	EXPECT_EQ(LO_FLAGS_DIRECT_IO, (int)info.lo_flags);
	EXPECT_EQ(1, loop_sysfs_ll(idx, "loop/dio"));
	EXPECT_EQ(0, xioctl(self->fd[s], LOOP_SET_DIRECT_IO, 7));
	ASSERT_EQ(4096, pread(self->fd[s], buf, 4096, 12288));
	EXPECT_TRUE(check(buf, 4096, 12288, 4));
	ASSERT_EQ(0, xioctl(self->fd[s], LOOP_SET_DIRECT_IO, 0));
	EXPECT_EQ(0, loop_sysfs_ll(idx, "loop/dio"));

	/* An unaligned offset: refused, and SET_STATUS drops it silently. */
	ASSERT_EQ(0, xioctl(self->fd[s], LOOP_SET_DIRECT_IO, 1));
	ASSERT_EQ(0, get_status(self->fd[s], &info));
	info.lo_offset = 1000;
	ASSERT_EQ(0, set_status64(self->fd[s], &info));
	ASSERT_EQ(0, get_status(self->fd[s], &info));
	EXPECT_EQ(0, (int)info.lo_flags);
	EXPECT_EQ(0, loop_sysfs_ll(idx, "loop/dio"));
	EXPECT_EQ(-EINVAL, xioctl(self->fd[s], LOOP_SET_DIRECT_IO, 1));
	ASSERT_EQ(4096, pread(self->fd[s], buf, 4096, 0));
	EXPECT_TRUE(check(buf, 4096, 1000, 4));
}

/*
 * LOOP_SET_BLOCK_SIZE: powers of two from 512 up to the block layer's
 * BLK_MAX_BLOCK_SIZE (the page size without transparent huge pages, as on
 * the project's kernels; 64 KiB with them, as on Debian's) take effect at
 * once, 0 means the default (512 here), anything
 * else is EINVAL and changes nothing; an exclusive opener elsewhere makes
 * it EBUSY, unless asked through that opener.
 */
TEST_F(cfg, set_block_size)
{
	long page = sysconf(_SC_PAGESIZE);
	/* BLK_MAX_BLOCK_SIZE: 64 KiB with transparent huge pages (Debian's
	 * kernel), else the page size (the project's kernels). */
	unsigned long max = path_exists("/sys/kernel/mm/transparent_hugepage") ?
		65536 : (unsigned long)page;
	const unsigned long bad[] = { 1, 256, 511, 1000, 3072, 4097,
				      max * 2, max * 16, ~0UL };
	const char *f = mkfile(_metadata, self, MIB, 6);
	int s = get_dev(_metadata, self, O_RDWR), idx = self->idx[s], ex;
	unsigned char *buf;

	ASSERT_EQ(4096, page);
	ASSERT_EQ(0, posix_memalign((void **)&buf, 65536, 65536));
	ASSERT_EQ(0, bind_file(_metadata, self, s, f, 0));
	for (unsigned long bs = 512; bs <= max; bs <<= 1) {
		EXPECT_EQ(0, xioctl(self->fd[s], LOOP_SET_BLOCK_SIZE, bs))
			TH_LOG("block size %lu", bs);
		EXPECT_EQ((long long)bs, lbs(idx));
	}
	EXPECT_EQ(0, xioctl(self->fd[s], LOOP_SET_BLOCK_SIZE, 0));
	EXPECT_EQ(512, lbs(idx));
	ASSERT_EQ(0, xioctl(self->fd[s], LOOP_SET_BLOCK_SIZE, 4096));
	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		EXPECT_EQ(-EINVAL, xioctl(self->fd[s], LOOP_SET_BLOCK_SIZE, bad[i]))
			TH_LOG("block size %lu", bad[i]);
		EXPECT_EQ(4096, lbs(idx));
	}
	EXPECT_EQ(4096, loop_sysfs_ll(idx, "queue/physical_block_size"));
	EXPECT_EQ(MIB / 512, loop_sysfs_ll(idx, "size"));
	/* The same size again: 0. */
	EXPECT_EQ(0, xioctl(self->fd[s], LOOP_SET_BLOCK_SIZE, 4096));

	ex = loop_open(idx, O_RDONLY | O_EXCL);
	ASSERT_LE(0, ex);
	EXPECT_EQ(-EBUSY, xioctl(self->fd[s], LOOP_SET_BLOCK_SIZE, 512));
	EXPECT_EQ(4096, lbs(idx));
	EXPECT_EQ(0, xioctl(ex, LOOP_SET_BLOCK_SIZE, 1024));
	EXPECT_EQ(1024, lbs(idx));
	close(ex);
	EXPECT_EQ(0, xioctl(self->fd[s], LOOP_SET_BLOCK_SIZE, 2048));

	/* Data unchanged through it all. */
	ASSERT_EQ(65536, pread(self->fd[s], buf, 65536, 65536));
	EXPECT_TRUE(check(buf, 65536, 65536, 6));
	free(buf);
	/* The detach resets the block size. */
	detach(_metadata, self, s);
	EXPECT_EQ(512, lbs(idx));
	EXPECT_EQ(-ENXIO, xioctl(self->fd[s], LOOP_SET_BLOCK_SIZE, 4096));
}

/*
 * LOOP_SET_BLOCK_SIZE's argument is an unsigned long that loop.c hands to
 * loop_update_limits() as an unsigned int: 2^32 | 4096 sets 4096, and 2^32
 * is 0, the default (512 here). Only a 64-bit caller can pass such a value.
 */
TEST_F(cfg, set_block_size_truncates_to_unsigned_int)
{
#if __SIZEOF_LONG__ == 8
	const char *f = mkfile(_metadata, self, MIB, 7);
	int s = get_dev(_metadata, self, O_RDWR), idx = self->idx[s];

	ASSERT_EQ(0, bind_file(_metadata, self, s, f, 0));
	EXPECT_EQ(0, xioctl(self->fd[s], LOOP_SET_BLOCK_SIZE, (1UL << 32) | 4096));
	EXPECT_EQ(4096, lbs(idx));
	EXPECT_EQ(0, xioctl(self->fd[s], LOOP_SET_BLOCK_SIZE, 1UL << 32));
	EXPECT_EQ(512, lbs(idx));
	EXPECT_EQ(0, xioctl(self->fd[s], LOOP_SET_BLOCK_SIZE, (1UL << 32) | 1024));
	EXPECT_EQ(1024, lbs(idx));
	EXPECT_EQ(-EINVAL, xioctl(self->fd[s], LOOP_SET_BLOCK_SIZE, (1UL << 32) | 1000));
	EXPECT_EQ(1024, lbs(idx));
#else
	SKIP(return, "an unsigned long of 32 bits cannot hold 2^32");
#endif
}

/* BLKPG_ADD_PARTITION of partition @pno (bytes @start, @length); 0 or -errno. */
static int blkpg_add(int fd, int pno, long long start, long long length)
{
	struct blkpg_partition p = {
		.start = start, .length = length, .pno = pno,
	};
	struct blkpg_ioctl_arg a = {
		.op = BLKPG_ADD_PARTITION, .datalen = sizeof(p), .data = &p,
	};

	return xioctl(fd, BLKPG, (unsigned long)&a);
}

/*
 * Partitions added with BLKPG, with or without PARTSCAN, vanish on detach
 * (__loop_clr_fd drops every partition).
 */
TEST_F(cfg, blkpg_partitions_removed_on_detach)
{
	const char *f = mkfile(_metadata, self, 8 * MIB, 0);
	int s = get_dev(_metadata, self, O_RDWR), idx = self->idx[s];

	for (int partscan = 0; partscan < 2; partscan++) {
		ASSERT_EQ(0, bind_file(_metadata, self, s, f,
				       partscan ? LO_FLAGS_PARTSCAN : 0));
		ASSERT_EQ(0, blkpg_add(self->fd[s], 3, MIB, 2 * MIB));
		EXPECT_EQ(4096, part_size(idx, 3));
		EXPECT_TRUE(path_exists("/dev/loop%dp3", idx));
		EXPECT_EQ(-EBUSY, blkpg_add(self->fd[s], 3, MIB, 2 * MIB));
		detach(_metadata, self, s);
		EXPECT_FALSE(path_exists("/sys/block/loop%d/loop%dp3", idx, idx))
			TH_LOG("partscan %d", partscan);
		EXPECT_FALSE(path_exists("/dev/loop%dp3", idx));
	}
}

/*
 * Whether a kernel log record written since @kmsg (an /dev/kmsg descriptor
 * positioned at the end) contains @text.
 */
static bool kmsg_has(int kmsg, const char *text)
{
	char rec[2048];
	bool found = false;
	ssize_t n;

	/* One record per read; EAGAIN at the end, EPIPE if records were lost. */
	while ((n = read(kmsg, rec, sizeof(rec) - 1)) != 0) {
		if (n < 0) {
			if (errno == EPIPE)
				continue;
			break;
		}
		rec[n] = 0;
		found |= strstr(rec, text) != NULL;
	}
	return found;
}

/*
 * LOOP_SET_STATUS64 turning PARTSCAN on while a partition (added with
 * BLKPG) is open: the rescan fails with EBUSY, the ioctl still succeeds,
 * the partition stays, and the kernel log names the device and its
 * lo_file_name as loop_reread_partitions() does. blktests loop/010 greps
 * for this line.
 */
TEST_F(cfg, set_status64_rescan_busy_warns)
{
	const char *f = mkfile(_metadata, self, 8 * MIB, 0);
	int s = get_dev(_metadata, self, O_RDWR), idx = self->idx[s];
	struct loop_info64 info;
	char part[64], want[128];
	int pfd, kmsg;

	ASSERT_EQ(0, bind_file(_metadata, self, s, f, 0));
	ASSERT_EQ(0, blkpg_add(self->fd[s], 1, MIB, 2 * MIB));
	snprintf(part, sizeof(part), "/dev/loop%dp1", idx);
	pfd = xopen(_metadata, part, O_RDONLY);
	kmsg = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	ASSERT_LE(0, kmsg);
	ASSERT_EQ(0, (int)lseek(kmsg, 0, SEEK_END));

	ASSERT_EQ(0, xioctl(self->fd[s], LOOP_GET_STATUS64, (unsigned long)&info));
	info.lo_flags |= LO_FLAGS_PARTSCAN;
	snprintf((char *)info.lo_file_name, LO_NAME_SIZE, "rescan-busy-%d", idx);
	EXPECT_EQ(0, set_status64(self->fd[s], &info));
	snprintf(want, sizeof(want),
		 "loop_reread_partitions: partition scan of loop%d (rescan-busy-%d) failed (rc=-16)",
		 idx, idx);
	EXPECT_TRUE(kmsg_has(kmsg, want)) TH_LOG("no '%s' in the kernel log", want);
	EXPECT_EQ(4096, part_size(idx, 1));
	ASSERT_EQ(0, xioctl(self->fd[s], LOOP_GET_STATUS64, (unsigned long)&info));
	EXPECT_NE(0, (int)(info.lo_flags & LO_FLAGS_PARTSCAN));

	close(kmsg);
	close(pfd);
	detach(_metadata, self, s);
	EXPECT_FALSE(path_exists("/dev/loop%dp1", idx));
}

/* Change uevents of loopN seen on @sock within @ms milliseconds. */
static int change_events(int sock, int idx, int ms)
{
	char want[64], buf[4096];
	int n = 0;

	snprintf(want, sizeof(want), "change@/devices/virtual/block/loop%d", idx);
	for (;;) {
		struct pollfd pfd = { .fd = sock, .events = POLLIN };
		ssize_t len;

		if (poll(&pfd, 1, ms) <= 0)
			return n;
		len = recv(sock, buf, sizeof(buf) - 1, 0);
		if (len <= 0)
			return n;
		buf[len] = 0;
		n += !strcmp(buf, want);
	}
}

/* Attach and detach each send a change uevent for the disk. */
TEST_F(cfg, change_uevents)
{
	const char *f = mkfile(_metadata, self, MIB, 0);
	int s = get_dev(_metadata, self, O_RDWR), idx = self->idx[s];
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = 1 };
	int sock = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC,
			  NETLINK_KOBJECT_UEVENT);

	ASSERT_LE(0, sock);
	ASSERT_EQ(0, bind(sock, (struct sockaddr *)&sa, sizeof(sa)));
	change_events(sock, idx, 100);
	ASSERT_EQ(0, bind_file(_metadata, self, s, f, 0));
	EXPECT_LE(1, change_events(sock, idx, 500));
	ASSERT_EQ(0, ioctl(self->fd[s], LOOP_CLR_FD));
	reopen(_metadata, self, s);
	EXPECT_LE(1, change_events(sock, idx, 500));
	close(sock);
}

/*
 * LOOP_CHANGE_FD racing with a loop device stacked on top (the chain that
 * loop_validate_file walks under loop_validate_mutex): loopA is read-only
 * on file X and one thread swaps it between X and Y; another binds loopB
 * on top of loopA and detaches it again; a third asks loopA to change to
 * loopB, which must always fail (EBADF while loopB is bound on loopA,
 * EINVAL while it is not bound), since success would close a cycle.
 */
#define CHANGE_FD_RACE_MAX_SECONDS 20
#define CHANGE_FD_RACE_SECONDS tier_count(3, CHANGE_FD_RACE_MAX_SECONDS, \
					  CHANGE_FD_RACE_MAX_SECONDS)

struct change_fd_race {
	int a_fd, a_idx, b_idx;
	int file_fd[2];
	time_t end;
	/* Per thread: operations done and unexpected results. */
	long ops[3], bad[3];
	int last_err[3];
	/* Binds of loopB that found it still bound or being torn down. */
	long skipped;
};

static void note_bad(struct change_fd_race *r, int t, int err)
{
	__atomic_add_fetch(&r->bad[t], 1, __ATOMIC_RELAXED);
	r->last_err[t] = err;
}

static void *swap_thread(void *p)
{
	struct change_fd_race *r = p;

	for (long i = 0; time(NULL) < r->end; i++) {
		int err = xioctl(r->a_fd, LOOP_CHANGE_FD, r->file_fd[i & 1]);

		if (err)
			note_bad(r, 0, err);
		r->ops[0]++;
	}
	return NULL;
}

static void *stack_thread(void *p)
{
	struct change_fd_race *r = p;

	while (time(NULL) < r->end) {
		int b = loop_open(r->b_idx, O_RDONLY);
		int a = loop_open(r->a_idx, O_RDONLY);
		int err;

		/*
		 * When the other thread held loopB open at our LOOP_CLR_FD,
		 * its last close detaches it: until then loopB is still bound
		 * (EBUSY) or being torn down (ENXIO), as with loop.c.
		 */
		if (b == -ENXIO) {
			r->skipped++;
		} else if (b < 0 || a < 0) {
			note_bad(r, 1, b < 0 ? b : a);
		} else {
			err = configure(b, a, LO_FLAGS_READ_ONLY, 0, 0, 0);
			if (err == -EBUSY)
				r->skipped++;
			else if (err)
				note_bad(r, 1, err);
			else if ((err = xioctl(b, LOOP_CLR_FD, 0)))
				note_bad(r, 1, err);
		}
		if (a >= 0)
			close(a);
		if (b >= 0)
			close(b);
		r->ops[1]++;
	}
	return NULL;
}

static void *cycle_thread(void *p)
{
	struct change_fd_race *r = p;

	while (time(NULL) < r->end) {
		int b = loop_open(r->b_idx, O_RDONLY), err;

		/* loopB is closed for good only between its detach and rebind. */
		if (b == -ENXIO)
			continue;
		if (b < 0) {
			note_bad(r, 2, b);
			continue;
		}
		err = xioctl(r->a_fd, LOOP_CHANGE_FD, b);
		if (err != -EBADF && err != -EINVAL)
			note_bad(r, 2, err);
		close(b);
		r->ops[2]++;
	}
	return NULL;
}

TEST_F_TIMEOUT(cfg, change_fd_races_stacked_device,
	       4 * CHANGE_FD_RACE_MAX_SECONDS + 60)
{
	const char *x = mkfile(_metadata, self, MIB, 8);
	const char *y = mkfile(_metadata, self, MIB, 8);
	int a = get_dev(_metadata, self, O_RDONLY);
	int b = get_dev(_metadata, self, O_RDONLY);
	struct change_fd_race r = {
		.a_fd = self->fd[a], .a_idx = self->idx[a], .b_idx = self->idx[b],
	};
	void *(*fn[3])(void *) = { swap_thread, stack_thread, cycle_thread };
	static const char *const what[3] = {
		"CHANGE_FD to a file", "bind/unbind loopB on loopA",
		"CHANGE_FD to loopB",
	};
	unsigned char buf[4096];
	struct loop_info64 info;
	pthread_t th[3];

	ASSERT_NE(r.a_idx, r.b_idx);
	/* Only the threads open loopB: its last close may detach it. */
	close(self->fd[b]);
	self->fd[b] = -1;
	r.file_fd[0] = xopen(_metadata, x, O_RDONLY);
	r.file_fd[1] = xopen(_metadata, y, O_RDONLY);
	ASSERT_EQ(0, configure(r.a_fd, r.file_fd[0], LO_FLAGS_READ_ONLY, 0, 0, 0));
	r.end = time(NULL) + CHANGE_FD_RACE_SECONDS;
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(0, pthread_create(&th[i], NULL, fn[i], &r));
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < 3; i++) {
		TH_LOG("%s: %ld operations, %ld unexpected results (last %s)",
		       what[i], r.ops[i], r.bad[i],
		       r.bad[i] ? strerror(-r.last_err[i]) : "-");
		EXPECT_LT(0, r.ops[i]);
		EXPECT_EQ(0, r.bad[i]);
	}
	TH_LOG("loopB still bound or torn down at a bind: %ld times", r.skipped);
	/* loopA still reads its data from X or Y, and loopB is unbound. */
	ASSERT_EQ(0, get_status(r.a_fd, &info));
	EXPECT_EQ(LO_FLAGS_READ_ONLY, (int)info.lo_flags);
	ASSERT_EQ(4096, pread(r.a_fd, buf, 4096, 8192));
	EXPECT_TRUE(check(buf, 4096, 8192, 8));
	self->fd[b] = loop_open(r.b_idx, O_RDONLY);
	ASSERT_LE(0, self->fd[b]);
	EXPECT_EQ(-ENXIO, get_status(self->fd[b], &info));
	close(r.file_fd[0]);
	close(r.file_fd[1]);
}

TEST_HARNESS_MAIN
