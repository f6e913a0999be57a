// SPDX-License-Identifier: GPL-2.0
/*
 * Binding and unbinding: LOOP_SET_FD, LOOP_CONFIGURE, LOOP_CLR_FD and
 * LOOP_GET_STATUS64 with loop.c's exact errnos (loop_configure,
 * loop_validate_file, loop_set_status_from_info, loop_clr_fd, lo_release,
 * loop_get_status), what the block layer and sysfs show while a device is
 * bound (size, ro, queue limits, the "loop" attribute group) and that all
 * of it is gone again after the detach.
 *
 * Every failed bind is followed by a check that the device is still unbound
 * and can be bound afterwards.
 */
#include "common.h"

#include <limits.h>
#include <sys/socket.h>
#include <sys/sysmacros.h>
#include <linux/fs.h>

#include "kselftest_harness.h"

#include "bind.h"

/* ---------------------------------------------------------------- */

TEST_F(cfg, set_fd_binds)
{
	const char *f = mkfile(_metadata, self, MIB, 0);
	int s = get_dev(_metadata, self, O_RDWR), idx = self->idx[s];
	struct loop_info64 info;
	char buf[512];
	struct stat st;
	int ffd;

	ASSERT_UNBOUND(s);
	ffd = xopen(_metadata, f, O_RDWR);
	ASSERT_EQ(0, fstat(ffd, &st));
	ASSERT_EQ(0, set_fd(self->fd[s], ffd));
	/* The device holds its own reference to the file. */
	close(ffd);

	ASSERT_EQ(0, get_status(self->fd[s], &info));
	EXPECT_EQ((__u32)idx, info.lo_number);
	EXPECT_EQ(0ULL, info.lo_offset);
	EXPECT_EQ(0ULL, info.lo_sizelimit);
	EXPECT_EQ(0, (int)info.lo_flags);
	EXPECT_EQ(st.st_ino, info.lo_inode);
	EXPECT_EQ(enc_dev(st.st_dev), info.lo_device);
	EXPECT_EQ(0ULL, info.lo_rdevice);
	/* SET_FD names no file (losetup sets it with SET_STATUS64). */
	EXPECT_TRUE(all_zero(info.lo_file_name, sizeof(info.lo_file_name)));
	EXPECT_TRUE(all_zero(info.lo_crypt_name, sizeof(info.lo_crypt_name)));
	EXPECT_TRUE(all_zero(info.lo_encrypt_key, sizeof(info.lo_encrypt_key)));
	EXPECT_EQ(0U, info.lo_encrypt_type);
	EXPECT_EQ(0U, info.lo_encrypt_key_size);
	EXPECT_EQ(0ULL, info.lo_init[0]);
	EXPECT_EQ(0ULL, info.lo_init[1]);

	EXPECT_EQ(MIB / 512, loop_sysfs_ll(idx, "size"));
	EXPECT_EQ(MIB, blk_size64(self->fd[s]));
	EXPECT_EQ(0, loop_sysfs_ll(idx, "ro"));
	EXPECT_EQ(512, loop_sysfs_ll(idx, "queue/logical_block_size"));
	ASSERT_TRUE(loop_dir(idx));
	ASSERT_EQ(0, loop_sysfs_read(idx, "loop/backing_file", buf, sizeof(buf)));
	EXPECT_STREQ(f, buf);
	EXPECT_EQ(0, loop_sysfs_ll(idx, "loop/offset"));
	EXPECT_EQ(0, loop_sysfs_ll(idx, "loop/sizelimit"));
	EXPECT_EQ(0, loop_sysfs_ll(idx, "loop/autoclear"));
	EXPECT_EQ(0, loop_sysfs_ll(idx, "loop/partscan"));
	EXPECT_EQ(0, loop_sysfs_ll(idx, "loop/dio"));

	/* A NULL argument is EINVAL, bound or not. */
	EXPECT_EQ(-1, ioctl(self->fd[s], LOOP_GET_STATUS64, NULL));
	EXPECT_EQ(EINVAL, errno);

	detach(_metadata, self, s);
	EXPECT_EQ(-1, ioctl(self->fd[s], LOOP_GET_STATUS64, NULL));
	EXPECT_EQ(EINVAL, errno);
	/* Bindable again after the detach. */
	assert_bindable(_metadata, self, s, f);
}

TEST_F(cfg, configure_status_fields)
{
	const char *f = mkfile(_metadata, self, MIB, 0);
	int s = get_dev(_metadata, self, O_RDWR);
	struct loop_info64 info;
	struct loop_config c;
	struct stat st;
	char name[LO_NAME_SIZE];

	memset(&c, 0, sizeof(c));
	c.fd = xopen(_metadata, f, O_RDWR);
	ASSERT_EQ(0, fstat(c.fd, &st));
	/* The read-only fields are ignored; the name is cut to 63 bytes. */
	c.info.lo_number = 99;
	c.info.lo_device = 1234;
	c.info.lo_inode = 5678;
	c.info.lo_rdevice = 4321;
	memset(c.info.lo_file_name, 'x', LO_NAME_SIZE);
	strcpy((char *)c.info.lo_crypt_name, "crypt");
	memcpy(c.info.lo_encrypt_key, "secret", 6);
	c.info.lo_encrypt_key_size = 6;
	c.info.lo_init[0] = 1;
	c.info.lo_init[1] = 2;
	ASSERT_EQ(0, configure_cfg(self->fd[s], &c));
	close(c.fd);

	ASSERT_EQ(0, get_status(self->fd[s], &info));
	EXPECT_EQ((__u32)self->idx[s], info.lo_number);
	EXPECT_EQ(st.st_ino, info.lo_inode);
	EXPECT_EQ(enc_dev(st.st_dev), info.lo_device);
	EXPECT_EQ(0ULL, info.lo_rdevice);
	memset(name, 'x', sizeof(name));
	name[LO_NAME_SIZE - 1] = 0;
	EXPECT_EQ(0, memcmp(name, info.lo_file_name, LO_NAME_SIZE));
	/* Crypt name, key and key size are not kept. */
	EXPECT_TRUE(all_zero(info.lo_crypt_name, sizeof(info.lo_crypt_name)));
	EXPECT_TRUE(all_zero(info.lo_encrypt_key, sizeof(info.lo_encrypt_key)));
	EXPECT_EQ(0U, info.lo_encrypt_key_size);
	EXPECT_EQ(0U, info.lo_encrypt_type);
	EXPECT_EQ(0ULL, info.lo_init[0]);
	EXPECT_EQ(0ULL, info.lo_init[1]);
	EXPECT_EQ(0, (int)info.lo_flags);

	/* The name does not survive the detach. */
	detach(_metadata, self, s);
	c.fd = xopen(_metadata, f, O_RDWR);
	ASSERT_EQ(0, set_fd(self->fd[s], c.fd));
	close(c.fd);
	ASSERT_EQ(0, get_status(self->fd[s], &info));
	EXPECT_TRUE(all_zero(info.lo_file_name, sizeof(info.lo_file_name)));
}

TEST_F(cfg, configure_block_sizes)
{
	static const unsigned int bs[] = { 0, 512, 1024, 2048, 4096 };
	const char *f = mkfile(_metadata, self, MIB, 0);
	int s = get_dev(_metadata, self, O_RDWR), idx = self->idx[s];

	for (unsigned int i = 0; i < sizeof(bs) / sizeof(bs[0]); i++) {
		unsigned int want = bs[i] ? bs[i] : 512;
		int ffd = xopen(_metadata, f, O_RDWR), v = 0;

		ASSERT_EQ(0, configure(self->fd[s], ffd, 0, 0, 0, bs[i]))
			TH_LOG("block_size %u", bs[i]);
		close(ffd);
		EXPECT_EQ(want, loop_sysfs_ll(idx, "queue/logical_block_size"));
		EXPECT_EQ(want, loop_sysfs_ll(idx, "queue/physical_block_size"));
		EXPECT_EQ(want, loop_sysfs_ll(idx, "queue/minimum_io_size"));
		ASSERT_EQ(0, ioctl(self->fd[s], BLKSSZGET, &v));
		EXPECT_EQ((int)want, v);
		ASSERT_EQ(0, ioctl(self->fd[s], BLKPBSZGET, &v));
		EXPECT_EQ((int)want, v);
		/* The size is still counted in 512-byte sectors. */
		EXPECT_EQ(MIB / 512, loop_sysfs_ll(idx, "size"));
		detach(_metadata, self, s);
		/* The detach resets the block size. */
		EXPECT_EQ(512, loop_sysfs_ll(idx, "queue/logical_block_size"));
		EXPECT_EQ(512, loop_sysfs_ll(idx, "queue/physical_block_size"));
		EXPECT_EQ(512, loop_sysfs_ll(idx, "queue/minimum_io_size"));
	}
}

TEST_F(cfg, configure_bad_block_size_einval)
{
	/*
	 * The queue limits reject a size that is not a power of two, below
	 * 512 or above BLK_MAX_BLOCK_SIZE (64 KiB with transparent huge
	 * pages, else PAGE_SIZE).
	 */
	unsigned int max = path_exists("/sys/kernel/mm/transparent_hugepage") ?
		65536 : (unsigned int)sysconf(_SC_PAGESIZE);
	unsigned int bs[] = { 1, 256, 511, 513, 1000, 3072, 4095, max * 2,
			      max * 16, 0x80000000u };
	const char *f = mkfile(_metadata, self, MIB, 0);
	int s = get_dev(_metadata, self, O_RDWR);

	for (unsigned int i = 0; i < sizeof(bs) / sizeof(bs[0]); i++) {
		int ffd = xopen(_metadata, f, O_RDWR);

		EXPECT_EQ(-EINVAL, configure(self->fd[s], ffd, 0, 0, 0, bs[i]))
			TH_LOG("block_size %u", bs[i]);
		close(ffd);
		ASSERT_UNBOUND(s);
		EXPECT_EQ(512, loop_sysfs_ll(self->idx[s],
					     "queue/logical_block_size"));
	}
	/* The largest valid size binds. */
	int ffd = xopen(_metadata, f, O_RDWR);

	EXPECT_EQ(0, configure(self->fd[s], ffd, 0, 0, 0, max));
	close(ffd);
	EXPECT_EQ(max, loop_sysfs_ll(self->idx[s], "queue/logical_block_size"));
	detach(_metadata, self, s);
	assert_bindable(_metadata, self, s, f);
}

TEST_F(cfg, configure_offset_sizelimit)
{
	static const struct {
		__u64 offset, sizelimit;
		long long sectors;
	} t[] = {
		{ 0, 0, MIB / 512 },
		{ 4096, 0, (MIB - 4096) / 512 },
		{ 1000, 0, (MIB - 1000) / 512 },	/* rounded down */
		{ 0, 65536, 128 },
		{ 0, 1000, 1 },
		{ 0, 100, 0 },
		{ 4096, 65536, 128 },
		{ 4096, 4 * MIB, (MIB - 4096) / 512 },	/* limit past EOF */
		{ MIB, 0, 0 },				/* offset at EOF */
		{ 2 * MIB, 0, 0 },			/* offset past EOF */
		{ LLONG_MAX, 0, 0 },
		{ 0, LLONG_MAX, MIB / 512 },
	};
	const char *f = mkfile(_metadata, self, MIB, 0);
	int s = get_dev(_metadata, self, O_RDWR), idx = self->idx[s];

	for (unsigned int i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct loop_info64 info;
		int ffd = xopen(_metadata, f, O_RDWR);

		ASSERT_EQ(0, configure(self->fd[s], ffd, 0, t[i].offset,
				       t[i].sizelimit, 0))
			TH_LOG("offset %llu sizelimit %llu",
			       (unsigned long long)t[i].offset,
			       (unsigned long long)t[i].sizelimit);
		close(ffd);
		EXPECT_EQ(t[i].sectors, loop_sysfs_ll(idx, "size"))
			TH_LOG("offset %llu sizelimit %llu",
			       (unsigned long long)t[i].offset,
			       (unsigned long long)t[i].sizelimit);
		EXPECT_EQ(t[i].sectors * 512, blk_size64(self->fd[s]));
		ASSERT_EQ(0, get_status(self->fd[s], &info));
		EXPECT_EQ(t[i].offset, info.lo_offset);
		EXPECT_EQ(t[i].sizelimit, info.lo_sizelimit);
		EXPECT_EQ((long long)t[i].offset,
			  loop_sysfs_ll(idx, "loop/offset"));
		EXPECT_EQ((long long)t[i].sizelimit,
			  loop_sysfs_ll(idx, "loop/sizelimit"));
		detach(_metadata, self, s);
	}
}

TEST_F(cfg, configure_offset_overflow_eoverflow)
{
	static const struct { __u64 offset, sizelimit; } t[] = {
		{ (__u64)LLONG_MAX + 1, 0 },
		{ ~0ULL, 0 },
		{ 0, (__u64)LLONG_MAX + 1 },
		{ 0, ~0ULL },
		{ 4096, ~0ULL },
	};
	const char *f = mkfile(_metadata, self, MIB, 0);
	int s = get_dev(_metadata, self, O_RDWR);

	for (unsigned int i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int ffd = xopen(_metadata, f, O_RDWR);

		EXPECT_EQ(-EOVERFLOW, configure(self->fd[s], ffd, 0,
						t[i].offset, t[i].sizelimit, 0))
			TH_LOG("case %u", i);
		close(ffd);
		ASSERT_UNBOUND(s);
	}
	assert_bindable(_metadata, self, s, f);
}

TEST_F(cfg, configure_encryption_einval)
{
	static const struct { __u32 type, key_size; } t[] = {
		{ 0, 33 },
		{ 0, 0xffffffffu },	/* compared as unsigned */
		{ 1, 0 },		/* LO_CRYPT_XOR: removed */
		{ 18, 0 },		/* LO_CRYPT_CRYPTOAPI: removed */
		{ 2, 0 },
		{ 0xffffffffu, 0 },
	};
	const char *f = mkfile(_metadata, self, MIB, 0);
	int s = get_dev(_metadata, self, O_RDWR);
	struct loop_config c;

	for (unsigned int i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		memset(&c, 0, sizeof(c));
		c.fd = xopen(_metadata, f, O_RDWR);
		c.info.lo_encrypt_type = t[i].type;
		c.info.lo_encrypt_key_size = t[i].key_size;
		EXPECT_EQ(-EINVAL, configure_cfg(self->fd[s], &c))
			TH_LOG("type %u key_size %u", t[i].type, t[i].key_size);
		close(c.fd);
		ASSERT_UNBOUND(s);
	}
	/* A 32-byte key of type NONE is accepted (and forgotten). */
	memset(&c, 0, sizeof(c));
	c.fd = xopen(_metadata, f, O_RDWR);
	c.info.lo_encrypt_key_size = LO_KEY_SIZE;
	memset(c.info.lo_encrypt_key, 0x5a, LO_KEY_SIZE);
	ASSERT_EQ(0, configure_cfg(self->fd[s], &c));
	close(c.fd);
	detach(_metadata, self, s);
	assert_bindable(_metadata, self, s, f);
}

TEST_F(cfg, configure_bad_flags_einval)
{
	static const __u32 flags[] = {
		2, 32, 64, 128, 0x100, 0x80000000u,
		LO_FLAGS_READ_ONLY | 2,
		LO_FLAGS_AUTOCLEAR | LO_FLAGS_PARTSCAN | 32,
		~0u,
	};
	const char *f = mkfile(_metadata, self, MIB, 0);
	int s = get_dev(_metadata, self, O_RDWR);

	for (unsigned int i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		int ffd = xopen(_metadata, f, O_RDWR);

		EXPECT_EQ(-EINVAL, configure(self->fd[s], ffd, flags[i], 0, 0, 0))
			TH_LOG("flags %#x", flags[i]);
		close(ffd);
		ASSERT_UNBOUND(s);
	}
	assert_bindable(_metadata, self, s, f);
}

TEST_F(cfg, bad_fd_ebadf)
{
	const char *f = mkfile(_metadata, self, MIB, 0);
	int s = get_dev(_metadata, self, O_RDWR);
	int closed = xopen(_metadata, f, O_RDWR);
	int opath = xopen(_metadata, f, O_PATH);

	close(closed);
	EXPECT_EQ(-EBADF, set_fd(self->fd[s], closed));
	ASSERT_UNBOUND(s);
	EXPECT_EQ(-EBADF, configure(self->fd[s], closed, 0, 0, 0, 0));
	ASSERT_UNBOUND(s);
	EXPECT_EQ(-EBADF, set_fd(self->fd[s], -1));
	ASSERT_UNBOUND(s);
	EXPECT_EQ(-EBADF, configure(self->fd[s], -1, 0, 0, 0, 0));
	ASSERT_UNBOUND(s);
	/* An O_PATH descriptor is not a file to do I/O on. */
	EXPECT_EQ(-EBADF, set_fd(self->fd[s], opath));
	ASSERT_UNBOUND(s);
	EXPECT_EQ(-EBADF, configure(self->fd[s], opath, 0, 0, 0, 0));
	close(opath);
	assert_bindable(_metadata, self, s, f);
}

TEST_F(cfg, not_a_file_einval)
{
	const char *f = mkfile(_metadata, self, MIB, 0);
	int s = get_dev(_metadata, self, O_RDWR);
	int pipefd[2], sv[2], fds[4];
	const char *what[] = { "directory", "pipe", "socket", "/dev/null" };

	fds[0] = xopen(_metadata, scratch_dir(), O_RDONLY | O_DIRECTORY);
	ASSERT_EQ(0, pipe(pipefd));
	fds[1] = pipefd[0];
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	fds[2] = sv[0];
	fds[3] = xopen(_metadata, "/dev/null", O_RDWR);
	for (int i = 0; i < 4; i++) {
		EXPECT_EQ(-EINVAL, set_fd(self->fd[s], fds[i])) TH_LOG("%s", what[i]);
		ASSERT_UNBOUND(s);
		EXPECT_EQ(-EINVAL, configure(self->fd[s], fds[i], 0, 0, 0, 0))
			TH_LOG("%s", what[i]);
		ASSERT_UNBOUND(s);
	}
	assert_bindable(_metadata, self, s, f);
}

TEST_F(cfg, already_bound_ebusy)
{
	const char *f = mkfile(_metadata, self, MIB, 0);
	const char *g = mkfile(_metadata, self, 2 * MIB, 0);
	int s = get_dev(_metadata, self, O_RDWR), idx = self->idx[s];
	int ffd = xopen(_metadata, f, O_RDWR), gfd = xopen(_metadata, g, O_RDWR);
	char buf[512];

	ASSERT_EQ(0, set_fd(self->fd[s], ffd));
	EXPECT_EQ(-EBUSY, set_fd(self->fd[s], ffd));
	EXPECT_EQ(-EBUSY, set_fd(self->fd[s], gfd));
	EXPECT_EQ(-EBUSY, configure(self->fd[s], gfd, 0, 0, 0, 0));
	/* The EBUSY comes before any other check of the new configuration. */
	EXPECT_EQ(-EBUSY, configure(self->fd[s], gfd, 0x100, 0, 0, 1000));
	/* Still bound to the first file. */
	ASSERT_EQ(0, loop_sysfs_read(idx, "loop/backing_file", buf, sizeof(buf)));
	EXPECT_STREQ(f, buf);
	EXPECT_EQ(MIB / 512, loop_sysfs_ll(idx, "size"));

	/* A device in rundown (LOOP_CLR_FD by its only opener) is busy too. */
	ASSERT_EQ(0, ioctl(self->fd[s], LOOP_CLR_FD));
	EXPECT_EQ(-EBUSY, set_fd(self->fd[s], gfd));
	EXPECT_EQ(-EBUSY, configure(self->fd[s], gfd, 0, 0, 0, 0));
	close(ffd);
	close(gfd);
	reopen(_metadata, self, s);
	ASSERT_UNBOUND(s);
	assert_bindable(_metadata, self, s, g);
}

TEST_F(cfg, backed_by_itself_ebadf)
{
	const char *f = mkfile(_metadata, self, MIB, 0);
	int s = get_dev(_metadata, self, O_RDWR);
	int self_fd = loop_open(self->idx[s], O_RDWR);

	ASSERT_LE(0, self_fd);
	EXPECT_EQ(-EBADF, set_fd(self->fd[s], self_fd));
	ASSERT_UNBOUND(s);
	EXPECT_EQ(-EBADF, configure(self->fd[s], self_fd, 0, 0, 0, 0));
	ASSERT_UNBOUND(s);
	EXPECT_EQ(-EBADF, configure(self->fd[s], self_fd, LO_FLAGS_READ_ONLY,
				    0, 0, 0));
	close(self_fd);
	assert_bindable(_metadata, self, s, f);
}

TEST_F(cfg, unbound_loop_backing_einval)
{
	const char *f = mkfile(_metadata, self, MIB, 0);
	int a = get_dev(_metadata, self, O_RDWR);
	int b = get_dev(_metadata, self, O_RDWR);

	ASSERT_NE(self->idx[a], self->idx[b]);
	ASSERT_UNBOUND(b);
	EXPECT_EQ(-EINVAL, set_fd(self->fd[a], self->fd[b]));
	ASSERT_UNBOUND(a);
	EXPECT_EQ(-EINVAL, configure(self->fd[a], self->fd[b], 0, 0, 0, 0));
	ASSERT_UNBOUND(a);
	assert_bindable(_metadata, self, a, f);
}

/*
 * A loop device in rundown (LOOP_CLR_FD by its only opener, which still
 * holds it open) is no backing store: loop_validate_file() finds its
 * lo_state is not Lo_bound, EINVAL, for LOOP_SET_FD and LOOP_CONFIGURE.
 */
TEST_F(cfg, rundown_loop_backing_einval)
{
	const char *f = mkfile(_metadata, self, MIB, 0);
	int b = get_dev(_metadata, self, O_RDWR);
	int ffd = xopen(_metadata, f, O_RDWR), a;

	ASSERT_EQ(0, set_fd(self->fd[b], ffd));
	close(ffd);
	a = get_dev(_metadata, self, O_RDWR);
	ASSERT_NE(self->idx[a], self->idx[b]);
	ASSERT_EQ(0, ioctl(self->fd[b], LOOP_CLR_FD));
	EXPECT_EQ(-EINVAL, set_fd(self->fd[a], self->fd[b]));
	ASSERT_UNBOUND(a);
	EXPECT_EQ(-EINVAL, configure(self->fd[a], self->fd[b], 0, 0, 0, 0));
	ASSERT_UNBOUND(a);
	/* The last close detaches loopB; loopA is still free to use. */
	close(self->fd[b]);
	self->fd[b] = -1;
	EXPECT_FALSE(loop_dir(self->idx[b]));
	assert_bindable(_metadata, self, a, f);
}

/*
 * Loop on loop: loopA backed by loopB, which is backed by a file, is a
 * valid chain. Pointing loopB at loopA would close a cycle; loop_configure
 * cannot be asked that (loopB is bound, EBUSY first), but LOOP_CHANGE_FD
 * runs the same loop_validate_file() walk, which finds loopB in the chain
 * behind loopA: EBADF.
 */
TEST_F(cfg, loop_chain_and_cycle)
{
	const char *f = mkfile(_metadata, self, MIB, 7);
	int b = get_dev(_metadata, self, O_RDWR);
	int ffd = xopen(_metadata, f, O_RDONLY), bfd, afd, a;
	struct loop_info64 info;
	unsigned char buf[4096];
	struct stat st;

	ASSERT_EQ(0, configure(self->fd[b], ffd, LO_FLAGS_READ_ONLY, 0, 0, 0));
	close(ffd);
	a = get_dev(_metadata, self, O_RDWR);
	ASSERT_NE(self->idx[a], self->idx[b]);
	bfd = loop_open(self->idx[b], O_RDONLY);
	ASSERT_LE(0, bfd);
	ASSERT_EQ(0, fstat(bfd, &st));
	ASSERT_EQ(0, set_fd(self->fd[a], bfd));
	close(bfd);

	/* A block device as backing: lo_rdevice is its device number. */
	ASSERT_EQ(0, get_status(self->fd[a], &info));
	EXPECT_EQ(LO_FLAGS_READ_ONLY, (int)info.lo_flags);
	EXPECT_EQ(st.st_ino, info.lo_inode);
	EXPECT_EQ(enc_dev(st.st_dev), info.lo_device);
	EXPECT_EQ(enc_dev(st.st_rdev), info.lo_rdevice);
	EXPECT_EQ(MIB / 512, loop_sysfs_ll(self->idx[a], "size"));
	/* The data comes through both layers. */
	ASSERT_EQ((ssize_t)sizeof(buf), pread(self->fd[a], buf, sizeof(buf), 8192));
	EXPECT_TRUE(check(buf, sizeof(buf), 8192, 7));

	afd = loop_open(self->idx[a], O_RDONLY);
	ASSERT_LE(0, afd);
	EXPECT_EQ(-1, ioctl(self->fd[b], LOOP_CHANGE_FD, afd));
	EXPECT_EQ(EBADF, errno);
	close(afd);
	/* loopB is still bound to the file. */
	ASSERT_EQ(0, get_status(self->fd[b], &info));
	EXPECT_EQ(LO_FLAGS_READ_ONLY, (int)info.lo_flags);
	ASSERT_EQ(0, loop_sysfs_read(self->idx[b], "loop/backing_file",
				     (char *)buf, sizeof(buf)));
	EXPECT_STREQ(f, (char *)buf);
}

TEST_F(cfg, read_only_flag)
{
	const char *f = mkfile(_metadata, self, MIB, 3);
	int s = get_dev(_metadata, self, O_RDWR), idx = self->idx[s];
	int ffd = xopen(_metadata, f, O_RDWR), ro = -1, dfd;
	unsigned char *buf;
	struct loop_info64 info;
	__u64 range[2] = { 0, 4096 };

	ASSERT_EQ(0, posix_memalign((void **)&buf, 4096, 4096));
	ASSERT_EQ(0, configure(self->fd[s], ffd, LO_FLAGS_READ_ONLY, 0, 0, 0));
	close(ffd);
	ASSERT_EQ(0, get_status(self->fd[s], &info));
	EXPECT_EQ(LO_FLAGS_READ_ONLY, (int)info.lo_flags);
	EXPECT_EQ(1, loop_sysfs_ll(idx, "ro"));
	ASSERT_EQ(0, ioctl(self->fd[s], BLKROGET, &ro));
	EXPECT_EQ(1, ro);

	/* Reads work; writes are refused by the block layer with EPERM. */
	ASSERT_EQ(4096, pread(self->fd[s], buf, 4096, 4096));
	EXPECT_TRUE(check(buf, 4096, 4096, 3));
	memset(buf, 0, 4096);
	EXPECT_EQ(-1, pwrite(self->fd[s], buf, 4096, 0));
	EXPECT_EQ(EPERM, errno);
	/* A new O_RDWR open succeeds, its writes fail alike, O_DIRECT too. */
	dfd = loop_open(idx, O_RDWR | O_DIRECT);
	ASSERT_LE(0, dfd);
	EXPECT_EQ(-1, pwrite(dfd, buf, 4096, 0));
	EXPECT_EQ(EPERM, errno);
	EXPECT_EQ(-1, ioctl(dfd, BLKDISCARD, range));
	EXPECT_EQ(EPERM, errno);
	EXPECT_EQ(-1, ioctl(dfd, BLKZEROOUT, range));
	EXPECT_EQ(EPERM, errno);
	close(dfd);
	EXPECT_EQ(0, fsync(self->fd[s]));
	detach(_metadata, self, s);
	/*
	 * loop.c sets the disk's read-only state when it binds and leaves it
	 * at the detach: the next bind decides.
	 */
	EXPECT_EQ(1, loop_sysfs_ll(idx, "ro"));
	ffd = xopen(_metadata, f, O_RDWR);
	ASSERT_EQ(0, set_fd(self->fd[s], ffd));
	close(ffd);
	EXPECT_EQ(0, loop_sysfs_ll(idx, "ro"));
	ASSERT_EQ(0, ioctl(self->fd[s], BLKROGET, &ro));
	EXPECT_EQ(0, ro);
	detach(_metadata, self, s);
	EXPECT_EQ(0, loop_sysfs_ll(idx, "ro"));

	/* The file is unchanged. */
	ffd = xopen(_metadata, f, O_RDONLY);
	ASSERT_EQ(4096, pread(ffd, buf, 4096, 0));
	EXPECT_TRUE(check(buf, 4096, 0, 3));
	close(ffd);
	free(buf);
}

TEST_F(cfg, read_only_file_forces_read_only)
{
	const char *f = mkfile(_metadata, self, MIB, 0);
	int s = get_dev(_metadata, self, O_RDWR);
	struct loop_info64 info;
	char buf[512] = { 0 };
	int ffd;

	ffd = xopen(_metadata, f, O_RDONLY);
	ASSERT_EQ(0, set_fd(self->fd[s], ffd));
	close(ffd);
	ASSERT_EQ(0, get_status(self->fd[s], &info));
	EXPECT_EQ(LO_FLAGS_READ_ONLY, (int)info.lo_flags);
	EXPECT_EQ(1, loop_sysfs_ll(self->idx[s], "ro"));
	EXPECT_EQ(-1, pwrite(self->fd[s], buf, sizeof(buf), 0));
	EXPECT_EQ(EPERM, errno);
	detach(_metadata, self, s);

	ffd = xopen(_metadata, f, O_RDONLY);
	ASSERT_EQ(0, configure(self->fd[s], ffd, LO_FLAGS_AUTOCLEAR, 0, 0, 0));
	close(ffd);
	ASSERT_EQ(0, get_status(self->fd[s], &info));
	EXPECT_EQ(LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR, (int)info.lo_flags);
	EXPECT_EQ(1, loop_sysfs_ll(self->idx[s], "ro"));
	detach(_metadata, self, s);
	assert_bindable(_metadata, self, s, f);
}

TEST_F(cfg, read_only_open_forces_read_only)
{
	const char *f = mkfile(_metadata, self, MIB, 0);
	int s = get_dev(_metadata, self, O_RDONLY);
	struct loop_info64 info;
	int ffd;

	ffd = xopen(_metadata, f, O_RDWR);
	ASSERT_EQ(0, set_fd(self->fd[s], ffd));
	ASSERT_EQ(0, get_status(self->fd[s], &info));
	EXPECT_EQ(LO_FLAGS_READ_ONLY, (int)info.lo_flags);
	EXPECT_EQ(1, loop_sysfs_ll(self->idx[s], "ro"));
	detach(_metadata, self, s);

	ASSERT_EQ(0, configure(self->fd[s], ffd, 0, 0, 0, 0));
	ASSERT_EQ(0, get_status(self->fd[s], &info));
	EXPECT_EQ(LO_FLAGS_READ_ONLY, (int)info.lo_flags);
	EXPECT_EQ(1, loop_sysfs_ll(self->idx[s], "ro"));
	detach(_metadata, self, s);
	close(ffd);
}

TEST_F(cfg, autoclear_on_last_close)
{
	const char *f = mkfile(_metadata, self, MIB, 0);
	int s = get_dev(_metadata, self, O_RDWR), idx = self->idx[s];
	struct loop_info64 info;
	int ffd = xopen(_metadata, f, O_RDWR), fd2;

	ASSERT_EQ(0, configure(self->fd[s], ffd, LO_FLAGS_AUTOCLEAR, 0, 0, 0));
	close(ffd);
	ASSERT_EQ(0, get_status(self->fd[s], &info));
	EXPECT_EQ(LO_FLAGS_AUTOCLEAR, (int)info.lo_flags);
	EXPECT_EQ(1, loop_sysfs_ll(idx, "loop/autoclear"));

	/* Closing one of two openers keeps it bound. */
	fd2 = loop_open(idx, O_RDONLY);
	ASSERT_LE(0, fd2);
	close(self->fd[s]);
	self->fd[s] = -1;
	ASSERT_EQ(0, get_status(fd2, &info));
	EXPECT_EQ(MIB / 512, loop_sysfs_ll(idx, "size"));
	EXPECT_TRUE(loop_dir(idx));

	/* The last close detaches before close() returns. */
	close(fd2);
	EXPECT_EQ(0, loop_sysfs_ll(idx, "size"));
	EXPECT_FALSE(loop_dir(idx));
	self->fd[s] = loop_open(idx, O_RDWR);
	ASSERT_LE(0, self->fd[s]);
	ASSERT_UNBOUND(s);
	assert_bindable(_metadata, self, s, f);
}

/* An MBR with one Linux partition at sector 2048, 2048 sectors long. */
static void write_mbr(struct __test_metadata *_metadata, const char *path)
{
	unsigned char mbr[512] = { 0 };
	unsigned char *p = mbr + 446;
	int fd = xopen(_metadata, path, O_RDWR);

	p[4] = 0x83;
	p[8 + 1] = 2048 >> 8;	/* start LBA, little endian */
	p[12 + 1] = 2048 >> 8;	/* sectors */
	mbr[510] = 0x55;
	mbr[511] = 0xaa;
	ASSERT_EQ(512, pwrite(fd, mbr, 512, 0));
	ASSERT_EQ(0, fsync(fd));
	close(fd);
}

TEST_F(cfg, partscan)
{
	const char *f = mkfile(_metadata, self, 4 * MIB, 0);
	int s = get_dev(_metadata, self, O_RDWR), idx = self->idx[s];
	struct loop_info64 info;
	char part[64], attr[128];
	int ffd;

	write_mbr(_metadata, f);
	snprintf(part, sizeof(part), "loop%dp1", idx);

	/* Without PARTSCAN (max_part=0) no partition appears... */
	ffd = xopen(_metadata, f, O_RDWR);
	ASSERT_EQ(0, configure(self->fd[s], ffd, 0, 0, 0, 0));
	close(ffd);
	EXPECT_EQ(0, loop_sysfs_ll(idx, "loop/partscan"));
	EXPECT_FALSE(path_exists("/sys/block/loop%d/%s", idx, part));
	/* ...and a rescan is refused. */
	EXPECT_EQ(-1, ioctl(self->fd[s], BLKRRPART));
	EXPECT_EQ(EINVAL, errno);
	detach(_metadata, self, s);

	/* With it, the partition is there when LOOP_CONFIGURE returns. */
	ffd = xopen(_metadata, f, O_RDWR);
	ASSERT_EQ(0, configure(self->fd[s], ffd, LO_FLAGS_PARTSCAN, 0, 0, 0));
	close(ffd);
	ASSERT_EQ(0, get_status(self->fd[s], &info));
	EXPECT_EQ(LO_FLAGS_PARTSCAN, (int)info.lo_flags);
	EXPECT_EQ(1, loop_sysfs_ll(idx, "loop/partscan"));
	ASSERT_TRUE(path_exists("/sys/block/loop%d/%s", idx, part));
	EXPECT_TRUE(path_exists("/dev/%s", part));
	snprintf(attr, sizeof(attr), "%s/start", part);
	EXPECT_EQ(2048, loop_sysfs_ll(idx, attr));
	snprintf(attr, sizeof(attr), "%s/size", part);
	EXPECT_EQ(2048, loop_sysfs_ll(idx, attr));
	/* The detach removes the partitions. */
	detach(_metadata, self, s);
	EXPECT_FALSE(path_exists("/sys/block/loop%d/%s", idx, part));
}

static bool dio_align(struct __test_metadata *_metadata, const char *path,
		      unsigned int *offset_align)
{
	struct statx stx;

	ASSERT_EQ(0, statx(AT_FDCWD, path, 0, STATX_DIOALIGN, &stx));
	*offset_align = stx.stx_dio_offset_align;
	return (stx.stx_mask & STATX_DIOALIGN) && stx.stx_dio_offset_align;
}

TEST_F(cfg, direct_io)
{
	const char *f = mkfile(_metadata, self, MIB, 0);
	int s = get_dev(_metadata, self, O_RDWR), idx = self->idx[s];
	struct loop_info64 info;
	unsigned int align;
	int ffd;

	if (!dio_align(_metadata, f, &align))
		SKIP(return, "%s reports no direct I/O alignment", scratch_dir());

	/* Requested: reported, and the block size follows the file's. */
	ffd = xopen(_metadata, f, O_RDWR);
	ASSERT_EQ(0, configure(self->fd[s], ffd, LO_FLAGS_DIRECT_IO, 0, 0, 0));
	close(ffd);
	ASSERT_EQ(0, get_status(self->fd[s], &info));
	EXPECT_EQ(LO_FLAGS_DIRECT_IO, (int)info.lo_flags);
	EXPECT_EQ(1, loop_sysfs_ll(idx, "loop/dio"));
	EXPECT_EQ(align, loop_sysfs_ll(idx, "queue/logical_block_size"));
	detach(_metadata, self, s);

	/* An O_DIRECT file turns it on without the flag. */
	ffd = xopen(_metadata, f, O_RDWR | O_DIRECT);
	ASSERT_EQ(0, set_fd(self->fd[s], ffd));
	close(ffd);
	ASSERT_EQ(0, get_status(self->fd[s], &info));
	EXPECT_EQ(LO_FLAGS_DIRECT_IO, (int)info.lo_flags);
	EXPECT_EQ(1, loop_sysfs_ll(idx, "loop/dio"));
	detach(_metadata, self, s);

	/* An offset the file cannot do direct I/O at: silently buffered. */
	ffd = xopen(_metadata, f, O_RDWR);
	ASSERT_EQ(0, configure(self->fd[s], ffd, LO_FLAGS_DIRECT_IO,
			       align / 2, 0, 0));
	close(ffd);
	ASSERT_EQ(0, get_status(self->fd[s], &info));
	EXPECT_EQ(0, (int)info.lo_flags);
	EXPECT_EQ(0, loop_sysfs_ll(idx, "loop/dio"));
	detach(_metadata, self, s);

	/* An aligned offset keeps it. */
	ffd = xopen(_metadata, f, O_RDWR);
	ASSERT_EQ(0, configure(self->fd[s], ffd, LO_FLAGS_DIRECT_IO,
			       align * 4, 0, 0));
	close(ffd);
	ASSERT_EQ(0, get_status(self->fd[s], &info));
	EXPECT_EQ(LO_FLAGS_DIRECT_IO, (int)info.lo_flags);
	EXPECT_EQ(1, loop_sysfs_ll(idx, "loop/dio"));
	detach(_metadata, self, s);

	/* All settable flags at once are reported as given. */
	ffd = xopen(_metadata, f, O_RDWR);
	ASSERT_EQ(0, configure(self->fd[s], ffd, LOOP_CONFIGURE_SETTABLE_FLAGS,
			       0, 0, 0));
	close(ffd);
	ASSERT_EQ(0, get_status(self->fd[s], &info));
	EXPECT_EQ(LOOP_CONFIGURE_SETTABLE_FLAGS, (int)info.lo_flags);
	EXPECT_EQ(1, loop_sysfs_ll(idx, "loop/dio"));
	EXPECT_EQ(1, loop_sysfs_ll(idx, "loop/autoclear"));
	EXPECT_EQ(1, loop_sysfs_ll(idx, "loop/partscan"));
	EXPECT_EQ(1, loop_sysfs_ll(idx, "ro"));
	detach(_metadata, self, s);
}

TEST_F(cfg, clr_fd_unbound_enxio)
{
	const char *f = mkfile(_metadata, self, MIB, 0);
	int s = get_dev(_metadata, self, O_RDWR);
	int ffd = xopen(_metadata, f, O_RDWR);

	EXPECT_EQ(-1, ioctl(self->fd[s], LOOP_CLR_FD));
	EXPECT_EQ(ENXIO, errno);
	/* A second LOOP_CLR_FD while the first waits for the last close. */
	ASSERT_EQ(0, set_fd(self->fd[s], ffd));
	close(ffd);
	ASSERT_EQ(0, ioctl(self->fd[s], LOOP_CLR_FD));
	EXPECT_EQ(-1, ioctl(self->fd[s], LOOP_CLR_FD));
	EXPECT_EQ(ENXIO, errno);
	reopen(_metadata, self, s);
	ASSERT_UNBOUND(s);
	EXPECT_EQ(-1, ioctl(self->fd[s], LOOP_CLR_FD));
	EXPECT_EQ(ENXIO, errno);
}

TEST_F(cfg, clr_fd_only_opener)
{
	const char *f = mkfile(_metadata, self, MIB, 0);
	int s = get_dev(_metadata, self, O_RDWR), idx = self->idx[s];
	int ffd = xopen(_metadata, f, O_RDWR);
	struct loop_info64 info;
	unsigned char buf[8192];
	void *p;

	ASSERT_EQ(0, set_fd(self->fd[s], ffd));
	close(ffd);
	fill(buf, sizeof(buf), 65536, 11);
	ASSERT_EQ((ssize_t)sizeof(buf), pwrite(self->fd[s], buf, sizeof(buf), 65536));
	ASSERT_EQ(0, fsync(self->fd[s]));

	ASSERT_EQ(0, ioctl(self->fd[s], LOOP_CLR_FD));
	/*
	 * Rundown: no longer reported as bound, new opens are refused, and
	 * I/O fails (loop_queue_rq: not Lo_bound -> BLK_STS_IOERR). (So
	 * writes still in the device's page cache are lost: the sync at the
	 * last close cannot write them.)
	 */
	EXPECT_EQ(-ENXIO, get_status(self->fd[s], &info));
	EXPECT_EQ(-ENXIO, loop_open(idx, O_RDONLY));
	EXPECT_EQ(-ENXIO, loop_open(idx, O_RDWR));
	ASSERT_EQ(0, posix_memalign(&p, 4096, 4096));
	ASSERT_EQ(0, fcntl(self->fd[s], F_SETFL, O_DIRECT));
	EXPECT_EQ(-1, pread(self->fd[s], p, 4096, 0));
	EXPECT_EQ(EIO, errno);
	free(p);
	close(self->fd[s]);
	self->fd[s] = -1;
	/* Detached when close() returned. */
	EXPECT_EQ(0, loop_sysfs_ll(idx, "size"));
	EXPECT_FALSE(loop_dir(idx));
	reopen(_metadata, self, s);
	ASSERT_UNBOUND(s);

	ffd = xopen(_metadata, f, O_RDONLY);
	memset(buf, 0, sizeof(buf));
	ASSERT_EQ((ssize_t)sizeof(buf), pread(ffd, buf, sizeof(buf), 65536));
	EXPECT_TRUE(check(buf, sizeof(buf), 65536, 11));
	close(ffd);
	assert_bindable(_metadata, self, s, f);
}

TEST_F(cfg, clr_fd_second_opener)
{
	const char *f = mkfile(_metadata, self, MIB, 0);
	int s = get_dev(_metadata, self, O_RDWR), idx = self->idx[s];
	int ffd = xopen(_metadata, f, O_RDWR), fd2, fd3;
	struct loop_info64 info;
	unsigned char buf[4096];

	ASSERT_EQ(0, set_fd(self->fd[s], ffd));
	close(ffd);
	fd2 = loop_open(idx, O_RDWR);
	ASSERT_LE(0, fd2);

	ASSERT_EQ(0, ioctl(self->fd[s], LOOP_CLR_FD));
	/* Still bound, now with AUTOCLEAR set. */
	ASSERT_EQ(0, get_status(self->fd[s], &info));
	EXPECT_EQ(LO_FLAGS_AUTOCLEAR, (int)info.lo_flags);
	EXPECT_EQ(1, loop_sysfs_ll(idx, "loop/autoclear"));
	EXPECT_EQ(MIB / 512, loop_sysfs_ll(idx, "size"));
	/* New opens still work, and I/O too. */
	fd3 = loop_open(idx, O_RDWR);
	ASSERT_LE(0, fd3);
	fill(buf, sizeof(buf), 0, 5);
	ASSERT_EQ((ssize_t)sizeof(buf), pwrite(fd3, buf, sizeof(buf), 0));
	close(fd3);

	close(self->fd[s]);
	self->fd[s] = -1;
	ASSERT_EQ(0, get_status(fd2, &info));
	EXPECT_TRUE(loop_dir(idx));

	close(fd2);
	EXPECT_EQ(0, loop_sysfs_ll(idx, "size"));
	EXPECT_FALSE(loop_dir(idx));
	reopen(_metadata, self, s);
	ASSERT_UNBOUND(s);

	ffd = xopen(_metadata, f, O_RDONLY);
	ASSERT_EQ((ssize_t)sizeof(buf), pread(ffd, buf, sizeof(buf), 0));
	EXPECT_TRUE(check(buf, sizeof(buf), 0, 5));
	close(ffd);
}

TEST_HARNESS_MAIN
