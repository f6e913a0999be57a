// SPDX-License-Identifier: GPL-2.0
/*
 * Data integrity through a loop device: what is written to the device is
 * in the backing file (at lo_offset) and what is in the file is read from
 * the device, for buffered and direct (LO_FLAGS_DIRECT_IO) backing I/O,
 * through device descriptors opened with and without O_DIRECT, for block
 * sizes 512 and 4096; lo_offset and lo_sizelimit; discard and write-zeroes
 * (fallocate on the backing file); flush (fsync of the backing file); and
 * reads past the end of the backing file (lo_complete_rq).
 */
#include "common.h"

#include <limits.h>
#include <pthread.h>
#include <sys/statfs.h>
#include <sys/uio.h>
#include <linux/falloc.h>
#include <linux/fiemap.h>
#include <linux/fs.h>

#include "kselftest_harness.h"

#define MIB (1024 * 1024)
#define FILE_SIZE (8 * MIB)
#define BUF_SIZE (2 * MIB + 16384)

FIXTURE(io) {
	char file[256];
	int idx;
	int dev;	/* the device, O_RDWR */
	int ddev;	/* the device, O_RDWR | O_DIRECT, while bound */
	unsigned long long devbytes;
	unsigned char *buf, *buf2, *img;
};

FIXTURE_VARIANT(io) {
	bool dio;	/* LO_FLAGS_DIRECT_IO */
};

FIXTURE_VARIANT_ADD(io, buffered) {
	.dio = false,
};

FIXTURE_VARIANT_ADD(io, direct) {
	.dio = true,
};

FIXTURE_SETUP(io)
{
	int fd;

	self->dev = self->ddev = -1;
	snprintf(self->file, sizeof(self->file), "%s/io-%d", scratch_dir(),
		 getpid());
	fd = open(self->file, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ASSERT_LE(0, fd) TH_LOG("create %s: %s", self->file, strerror(errno));
	close(fd);
	self->idx = loop_get_free();
	ASSERT_LE(0, self->idx);
	self->dev = loop_open(self->idx, O_RDWR);
	ASSERT_LE(0, self->dev);
	ASSERT_EQ(0, posix_memalign((void **)&self->buf, 4096, BUF_SIZE));
	ASSERT_EQ(0, posix_memalign((void **)&self->buf2, 4096, BUF_SIZE));
	self->img = malloc(FILE_SIZE);
	ASSERT_NE(NULL, self->img);
}

FIXTURE_TEARDOWN(io)
{
	if (self->ddev >= 0)
		close(self->ddev);
	if (self->dev >= 0) {
		ioctl(self->dev, LOOP_CLR_FD);
		close(self->dev);
	}
	unlink(self->file);
}

static int file_open(struct __test_metadata *_metadata,
		     FIXTURE_DATA(io) *self, int flags)
{
	int fd = open(self->file, flags | O_CLOEXEC);

	ASSERT_LE(0, fd) TH_LOG("open %s: %s", self->file, strerror(errno));
	return fd;
}

/* Recreate the backing file: @size bytes, sparse. */
static void file_reset(struct __test_metadata *_metadata,
		       FIXTURE_DATA(io) *self, off_t size)
{
	int fd = file_open(_metadata, self, O_RDWR | O_TRUNC);

	ASSERT_EQ(0, ftruncate(fd, size));
	close(fd);
}

/*
 * Write the pattern of @seed (stamped with file offsets) to the file, with
 * O_DIRECT when aligned (so none of it stays in the file's page cache and
 * the device has to read the disk), and fsync.
 */
static void file_fill(struct __test_metadata *_metadata,
		      FIXTURE_DATA(io) *self, off_t off, size_t len,
		      unsigned int seed)
{
	bool direct = !((off | len) & 4095);
	int fd = file_open(_metadata, self, O_RDWR | (direct ? O_DIRECT : 0));

	for (size_t done = 0; done < len;) {
		size_t n = len - done > MIB ? MIB : len - done;

		pattern_fill(self->buf2, n, off + done, seed);
		ASSERT_EQ((ssize_t)n, pwrite(fd, self->buf2, n, off + done));
		done += n;
	}
	ASSERT_EQ(0, fsync(fd));
	close(fd);
}

/*
 * Compare [@off, @off + @len) of the file with @want, MIB at a time;
 * -1 if equal, else the file offset of the first difference.
 */
static long long file_cmp(struct __test_metadata *_metadata,
			  FIXTURE_DATA(io) *self, off_t off, size_t len,
			  const unsigned char *want)
{
	int fd = file_open(_metadata, self, O_RDONLY);

	for (size_t done = 0; done < len;) {
		size_t n = len - done > MIB ? MIB : len - done;

		ASSERT_EQ((ssize_t)n, pread(fd, self->buf2, n, off + done));
		if (memcmp(self->buf2, want + done, n)) {
			size_t i = 0;

			while (self->buf2[i] == want[done + i])
				i++;
			close(fd);
			return off + done + i;
		}
		done += n;
	}
	close(fd);
	return -1;
}

/* Compare the whole device, read through @fd, with @want. */
static long long dev_cmp(struct __test_metadata *_metadata,
			 FIXTURE_DATA(io) *self, int fd,
			 const unsigned char *want)
{
	for (size_t done = 0; done < self->devbytes;) {
		size_t n = self->devbytes - done > MIB ? MIB : self->devbytes - done;

		ASSERT_EQ((ssize_t)n, pread(fd, self->buf2, n, done));
		if (memcmp(self->buf2, want + done, n)) {
			size_t i = 0;

			while (self->buf2[i] == want[done + i])
				i++;
			return done + i;
		}
		done += n;
	}
	return -1;
}

/*
 * Bind the file at @offset/@sizelimit with @bs, in the variant's mode
 * (which must be the effective one), and open the O_DIRECT descriptor.
 */
static void attach(struct __test_metadata *_metadata, FIXTURE_DATA(io) *self,
		 const FIXTURE_VARIANT(io) *variant, __u64 offset,
		 __u64 sizelimit, unsigned int bs)
{
	int fd = file_open(_metadata, self, O_RDWR);
	struct loop_info64 info;

	ASSERT_EQ(0, configure(self->dev, fd,
			       variant->dio ? LO_FLAGS_DIRECT_IO : 0,
			       offset, sizelimit, bs));
	close(fd);
	ASSERT_EQ(0, ioctl(self->dev, LOOP_GET_STATUS64, &info));
	ASSERT_EQ(variant->dio ? LO_FLAGS_DIRECT_IO : 0,
		  (int)info.lo_flags & LO_FLAGS_DIRECT_IO)
		TH_LOG("direct I/O is %s on %s", variant->dio ? "off" : "on",
		       scratch_dir());
	ASSERT_EQ(0, ioctl(self->dev, BLKGETSIZE64, &self->devbytes));
	ASSERT_EQ(bs ? bs : 512,
		  loop_sysfs_ll(self->idx, "queue/logical_block_size"));
	self->ddev = loop_open(self->idx, O_RDWR | O_DIRECT);
	ASSERT_LE(0, self->ddev);
}

/* LOOP_CLR_FD and the last close; the device is then unbound. */
static void detach(struct __test_metadata *_metadata, FIXTURE_DATA(io) *self)
{
	struct loop_info64 info;

	close(self->ddev);
	self->ddev = -1;
	ASSERT_EQ(0, ioctl(self->dev, LOOP_CLR_FD));
	close(self->dev);
	self->dev = loop_open(self->idx, O_RDWR);
	ASSERT_LE(0, self->dev);
	ASSERT_EQ(-1, ioctl(self->dev, LOOP_GET_STATUS64, &info));
	ASSERT_EQ(ENXIO, errno);
}

/* One write or read: @off and @len in the device, @mis: buffer offset. */
struct xfer {
	unsigned long long off;
	size_t len;
	size_t mis;
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Any alignment through the page cache of the device. */
static const struct xfer buffered_xfers[] = {
	{ 0, 512, 0 },
	{ 512, 1024, 0 },
	{ 7, 100, 3 },
	{ 4096 - 512, 1536, 0 },
	{ 65536 + 512, 4608, 512 },
	{ MIB - 512, MIB + 1024, 0 },
	{ 3 * MIB + 100, 200000, 100 },
	{ 5 * MIB, 2 * MIB, 0 },
	{ FILE_SIZE - 4096, 4096, 0 },
};

/* O_DIRECT, block size 512: the buffer may start mid-page. */
static const struct xfer direct512_xfers[] = {
	{ 512, 512, 512 },
	{ 1536, 3584, 0 },
	{ 8192, 65536 + 512, 512 },
	{ 2 * MIB + 512, MIB, 0 },
	{ 4 * MIB - 512, MIB + MIB / 2, 512 },	/* above max_hw_sectors */
	{ 6 * MIB, 2 * MIB, 0 },		/* several bios */
	{ FILE_SIZE - 512, 512, 0 },
};

/* O_DIRECT, block size 4096. */
static const struct xfer direct4096_xfers[] = {
	{ 4096, 4096, 0 },
	{ 12288, 65536, 0 },
	{ MIB, MIB + 4096, 0 },
	{ 3 * MIB + 8192, 2 * MIB, 0 },
	{ 7 * MIB, MIB, 0 },
};

static void xfer_list(unsigned int bs, bool direct, const struct xfer **x,
		      size_t *n)
{
	if (!direct) {
		*x = buffered_xfers, *n = N(buffered_xfers);
	} else if (bs == 4096) {
		*x = direct4096_xfers, *n = N(direct4096_xfers);
	} else {
		*x = direct512_xfers, *n = N(direct512_xfers);
	}
}

/*
 * Write through the device (buffered, then O_DIRECT, then a vectored
 * O_DIRECT write), fsync, and compare the backing file, the device read
 * with O_DIRECT and the device read through its (dropped) page cache with
 * the image of what was written.
 */
TEST_F_TIMEOUT(io, write_dev_read_file, 600)
{
	static const unsigned int sizes[] = { 512, 4096 };
	unsigned int seed = 100;

	for (unsigned int b = 0; b < N(sizes); b++) {
		unsigned int bs = sizes[b];
		const struct xfer *x;
		long long bad;
		size_t n;

		file_reset(_metadata, self, FILE_SIZE);
		attach(_metadata, self, variant, 0, 0, bs);
		ASSERT_EQ((unsigned long long)FILE_SIZE, self->devbytes);
		memset(self->img, 0, FILE_SIZE);

		for (int direct = 0; direct < 2; direct++) {
			int fd = direct ? self->ddev : self->dev;

			xfer_list(bs, direct, &x, &n);
			for (size_t i = 0; i < n; i++, seed++) {
				unsigned char *p = self->buf + x[i].mis;

				pattern_fill(p, x[i].len, x[i].off, seed);
				pattern_fill(self->img + x[i].off, x[i].len,
					     x[i].off, seed);
				ASSERT_EQ((ssize_t)x[i].len,
					  pwrite(fd, p, x[i].len, x[i].off))
					TH_LOG("bs %u %s write %zu@%llu: %s", bs,
					       direct ? "direct" : "buffered",
					       x[i].len, x[i].off, strerror(errno));
			}
			if (!direct)
				ASSERT_EQ(0, fsync(self->dev));
		}

		/* A vectored O_DIRECT write: segments of different sizes. */
		{
			unsigned long long off = 5 * MIB + 3 * bs;
			struct iovec iov[3] = {
				{ self->buf + (bs == 512 ? 512 : 0), bs },
				{ self->buf + 65536, 4 * bs },
				{ self->buf + 3 * 65536, 3 * bs },
			};
			unsigned long long o = off;

			for (int i = 0; i < 3; i++, seed++) {
				pattern_fill(iov[i].iov_base, iov[i].iov_len, o, seed);
				pattern_fill(self->img + o, iov[i].iov_len, o, seed);
				o += iov[i].iov_len;
			}
			ASSERT_EQ((ssize_t)(o - off), pwritev(self->ddev, iov, 3, off));
		}
		if (bs == 4096) {
			/* O_DIRECT below the logical block size is refused. */
			EXPECT_EQ(-1, pwrite(self->ddev, self->buf, 512, 4096));
			EXPECT_EQ(EINVAL, errno);
			EXPECT_EQ(-1, pwrite(self->ddev, self->buf, 4096, 512));
			EXPECT_EQ(EINVAL, errno);
		}
		ASSERT_EQ(0, fsync(self->ddev));

		bad = file_cmp(_metadata, self, 0, FILE_SIZE, self->img);
		EXPECT_EQ(-1, bad) TH_LOG("bs %u: file differs at %lld", bs, bad);
		bad = dev_cmp(_metadata, self, self->ddev, self->img);
		EXPECT_EQ(-1, bad) TH_LOG("bs %u: O_DIRECT read differs at %lld",
					  bs, bad);
		ASSERT_EQ(0, ioctl(self->dev, BLKFLSBUF));
		bad = dev_cmp(_metadata, self, self->dev, self->img);
		EXPECT_EQ(-1, bad) TH_LOG("bs %u: buffered read differs at %lld",
					  bs, bad);
		detach(_metadata, self);
	}
}

/*
 * Write the backing file and read it through the device, at many offsets
 * and sizes, buffered and O_DIRECT; then rewrite part of the file while
 * bound, drop the caches and read the new data through the device.
 */
TEST_F_TIMEOUT(io, write_file_read_dev, 600)
{
	static const unsigned int sizes[] = { 512, 4096 };

	for (unsigned int b = 0; b < N(sizes); b++) {
		unsigned int bs = sizes[b], seed = 20 + b;
		const struct xfer *x;
		long long bad;
		size_t n;

		file_reset(_metadata, self, FILE_SIZE);
		file_fill(_metadata, self, 0, FILE_SIZE, seed);
		pattern_fill(self->img, FILE_SIZE, 0, seed);
		attach(_metadata, self, variant, 0, 0, bs);

		for (int direct = 0; direct < 2; direct++) {
			int fd = direct ? self->ddev : self->dev;

			xfer_list(bs, direct, &x, &n);
			for (size_t i = 0; i < n; i++) {
				unsigned char *p = self->buf + x[i].mis;

				memset(p, 0xee, x[i].len);
				ASSERT_EQ((ssize_t)x[i].len,
					  pread(fd, p, x[i].len, x[i].off));
				bad = pattern_check(p, x[i].len, x[i].off, seed);
				EXPECT_EQ(-1, bad)
					TH_LOG("bs %u %s read %zu@%llu differs at +%lld",
					       bs, direct ? "direct" : "buffered",
					       x[i].len, x[i].off, bad);
			}
		}
		/* A vectored O_DIRECT read. */
		{
			unsigned long long off = 3 * MIB + bs;
			struct iovec iov[3] = {
				{ self->buf + 3 * 65536, 2 * bs },
				{ self->buf + (bs == 512 ? 512 : 0), bs },
				{ self->buf + 65536, 5 * bs },
			};

			ASSERT_EQ(8 * bs, preadv(self->ddev, iov, 3, off));
			for (int i = 0; i < 3; i++) {
				EXPECT_EQ(-1, pattern_check(iov[i].iov_base,
							    iov[i].iov_len, off, seed));
				off += iov[i].iov_len;
			}
		}

		/* Fill the device's page cache, then change the file. */
		bad = dev_cmp(_metadata, self, self->dev, self->img);
		EXPECT_EQ(-1, bad) TH_LOG("bs %u: buffered read differs at %lld",
					  bs, bad);
		file_fill(_metadata, self, MIB + 4096, 3 * MIB, seed + 10);
		pattern_fill(self->img + MIB + 4096, 3 * MIB, MIB + 4096, seed + 10);
		ASSERT_EQ(0, ioctl(self->dev, BLKFLSBUF));
		bad = dev_cmp(_metadata, self, self->dev, self->img);
		EXPECT_EQ(-1, bad) TH_LOG("bs %u: buffered read after change differs at %lld",
					  bs, bad);
		bad = dev_cmp(_metadata, self, self->ddev, self->img);
		EXPECT_EQ(-1, bad) TH_LOG("bs %u: O_DIRECT read after change differs at %lld",
					  bs, bad);
		detach(_metadata, self);
	}
}

/*
 * lo_offset and lo_sizelimit: the device is the window [lo_offset,
 * lo_offset + size) of the file, where size is sizelimit rounded down to
 * sectors. Writes land there and nowhere else; I/O at and past the end is
 * cut short by the block layer.
 */
TEST_F_TIMEOUT(io, offset_and_sizelimit, 300)
{
	/* Direct I/O needs an offset aligned for the file: 1 MiB. */
	unsigned long long off = variant->dio ? MIB : 4096 * 3 + 512 + 7;
	unsigned long long limit = 4 * MIB + (variant->dio ? 0 : 1000);
	unsigned long long size = limit / 512 * 512, end;
	long long bad;

	file_reset(_metadata, self, FILE_SIZE);
	file_fill(_metadata, self, 0, FILE_SIZE, 41);
	pattern_fill(self->img, FILE_SIZE, 0, 41);
	attach(_metadata, self, variant, off, limit, 0);
	ASSERT_EQ(size, self->devbytes);
	EXPECT_EQ((long long)size / 512, loop_sysfs_ll(self->idx, "size"));

	/* The device reads the window of the file. */
	bad = dev_cmp(_metadata, self, self->ddev, self->img + off);
	EXPECT_EQ(-1, bad) TH_LOG("O_DIRECT read differs at %lld", bad);
	bad = dev_cmp(_metadata, self, self->dev, self->img + off);
	EXPECT_EQ(-1, bad) TH_LOG("buffered read differs at %lld", bad);

	/* Fill the whole device, stamped with device offsets. */
	for (unsigned long long o = 0; o < size;) {
		size_t n = size - o > MIB ? MIB : size - o;
		int fd = (o / MIB) & 1 ? self->ddev : self->dev;

		pattern_fill(self->buf, n, o, 42);
		ASSERT_EQ((ssize_t)n, pwrite(fd, self->buf, n, o));
		o += n;
	}
	pattern_fill(self->img + off, size, 0, 42);
	ASSERT_EQ(0, fsync(self->dev));

	/* At and past the end of the device. */
	end = size;
	EXPECT_EQ(0, pread(self->dev, self->buf, 4096, end));
	EXPECT_EQ(0, pread(self->ddev, self->buf, 4096, end));
	EXPECT_EQ(512, pread(self->dev, self->buf, 4096, end - 512));
	EXPECT_EQ(-1, pattern_check(self->buf, 512, end - 512, 42));
	EXPECT_EQ(512, pread(self->ddev, self->buf, 4096, end - 512));
	EXPECT_EQ(-1, pattern_check(self->buf, 512, end - 512, 42));
	EXPECT_EQ(-1, pwrite(self->dev, self->buf, 512, end));
	EXPECT_EQ(ENOSPC, errno);
	EXPECT_EQ(-1, pwrite(self->ddev, self->buf, 512, end));
	EXPECT_EQ(ENOSPC, errno);
	/* A write across the end is cut to what fits. */
	pattern_fill(self->buf, 4096, end - 1024, 43);
	EXPECT_EQ(1024, pwrite(self->ddev, self->buf, 4096, end - 1024));
	pattern_fill(self->img + off + end - 1024, 1024, end - 1024, 43);
	ASSERT_EQ(0, fsync(self->ddev));

	/* The file: untouched before lo_offset and after the window. */
	bad = file_cmp(_metadata, self, 0, FILE_SIZE, self->img);
	EXPECT_EQ(-1, bad) TH_LOG("file differs at %lld (window %llu..%llu)",
				  bad, off, off + size);
	detach(_metadata, self);
}

static long long blocks_of(struct __test_metadata *_metadata,
			   FIXTURE_DATA(io) *self)
{
	struct stat st;

	ASSERT_EQ(0, stat(self->file, &st));
	return st.st_blocks;
}

static int range_op(int fd, unsigned long req, __u64 off, __u64 len)
{
	__u64 r[2] = { off, len };

	return ioctl(fd, req, r) ? -errno : 0;
}

/* Read [@off, @off + @len) of the device with O_DIRECT: all zeroes? */
static bool dev_zero(struct __test_metadata *_metadata, FIXTURE_DATA(io) *self,
		     int fd, off_t off, size_t len)
{
	memset(self->buf2, 0xee, len);
	ASSERT_EQ((ssize_t)len, pread(fd, self->buf2, len, off));
	for (size_t i = 0; i < len; i++)
		if (self->buf2[i])
			return false;
	return true;
}

static void fill_dev(struct __test_metadata *_metadata, FIXTURE_DATA(io) *self,
		     unsigned int seed)
{
	for (unsigned long long o = 0; o < self->devbytes; o += MIB) {
		pattern_fill(self->buf, MIB, o, seed);
		ASSERT_EQ(MIB, pwrite(self->ddev, self->buf, MIB, o));
	}
	pattern_fill(self->img, self->devbytes, 0, seed);
	ASSERT_EQ(0, fsync(self->dev));
}

/*
 * BLKDISCARD: punches a hole in the backing file (at lo_offset), the range
 * reads back as zeroes and the file gives its blocks back; the neighbours
 * keep their data. Also a discard smaller than a file system block.
 */
TEST_F_TIMEOUT(io, discard_punches_hole, 300)
{
	struct statfs sfs;
	long long before, after, bad;
	int fd;

	ASSERT_EQ(0, statfs(scratch_dir(), &sfs));
	file_reset(_metadata, self, FILE_SIZE);
	attach(_metadata, self, variant, 0, 0, 0);
	/* loop.c: discard by hole punching, granularity the fs block. */
	EXPECT_EQ(sfs.f_bsize, loop_sysfs_ll(self->idx, "queue/discard_granularity"));
	EXPECT_LT(0, loop_sysfs_ll(self->idx, "queue/discard_max_hw_bytes"));
	EXPECT_LT(0, loop_sysfs_ll(self->idx, "queue/write_zeroes_max_bytes"));
	fill_dev(_metadata, self, 51);
	before = blocks_of(_metadata, self);

	ASSERT_EQ(0, range_op(self->dev, BLKDISCARD, MIB, MIB));
	EXPECT_TRUE(dev_zero(_metadata, self, self->ddev, MIB, MIB));
	EXPECT_TRUE(dev_zero(_metadata, self, self->dev, MIB, MIB));
	memset(self->img + MIB, 0, MIB);
	after = blocks_of(_metadata, self);
	EXPECT_GE(before - 2048, after) TH_LOG("st_blocks %lld -> %lld", before, after);
	fd = file_open(_metadata, self, O_RDONLY);
	EXPECT_EQ(MIB, lseek(fd, MIB, SEEK_HOLE));
	EXPECT_EQ(2 * MIB, lseek(fd, MIB, SEEK_DATA));
	close(fd);

	/* Less than a file system block: zeroed, not deallocated. */
	ASSERT_EQ(0, range_op(self->dev, BLKDISCARD, 3 * MIB + 512, 1024));
	EXPECT_TRUE(dev_zero(_metadata, self, self->ddev, 3 * MIB + 512, 1024));
	memset(self->img + 3 * MIB + 512, 0, 1024);

	bad = file_cmp(_metadata, self, 0, FILE_SIZE, self->img);
	EXPECT_EQ(-1, bad) TH_LOG("file differs at %lld", bad);
	bad = dev_cmp(_metadata, self, self->ddev, self->img);
	EXPECT_EQ(-1, bad) TH_LOG("device differs at %lld", bad);
	detach(_metadata, self);

	/* With lo_offset, the hole is at the file offset + lo_offset. */
	file_reset(_metadata, self, FILE_SIZE);
	file_fill(_metadata, self, 0, FILE_SIZE, 52);
	pattern_fill(self->img, FILE_SIZE, 0, 52);
	attach(_metadata, self, variant, MIB, 0, 0);
	ASSERT_EQ(0, range_op(self->dev, BLKDISCARD, 2 * MIB, MIB));
	memset(self->img + 3 * MIB, 0, MIB);
	bad = file_cmp(_metadata, self, 0, FILE_SIZE, self->img);
	EXPECT_EQ(-1, bad) TH_LOG("file differs at %lld", bad);
	fd = file_open(_metadata, self, O_RDONLY);
	EXPECT_EQ(3 * MIB, lseek(fd, 0, SEEK_HOLE));
	EXPECT_EQ(4 * MIB, lseek(fd, 3 * MIB, SEEK_DATA));
	close(fd);
	detach(_metadata, self);
}

/*
 * Write-zeroes: BLKZEROOUT (REQ_NOUNMAP) zeroes the range and keeps the
 * file's blocks (FALLOC_FL_ZERO_RANGE); fallocate(PUNCH_HOLE) on the device
 * (write-zeroes without NOUNMAP) punches a hole.
 */
TEST_F_TIMEOUT(io, write_zeroes, 300)
{
	long long before, after, bad;
	int fd;

	file_reset(_metadata, self, FILE_SIZE);
	attach(_metadata, self, variant, 0, 0, 0);
	fill_dev(_metadata, self, 61);
	before = blocks_of(_metadata, self);

	ASSERT_EQ(0, range_op(self->dev, BLKZEROOUT, 2 * MIB, MIB));
	EXPECT_TRUE(dev_zero(_metadata, self, self->ddev, 2 * MIB, MIB));
	EXPECT_TRUE(dev_zero(_metadata, self, self->dev, 2 * MIB, MIB));
	memset(self->img + 2 * MIB, 0, MIB);
	after = blocks_of(_metadata, self);
	EXPECT_LE(before, after) TH_LOG("st_blocks %lld -> %lld", before, after);

	ASSERT_EQ(0, fallocate(self->dev, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			       5 * MIB, MIB));
	EXPECT_TRUE(dev_zero(_metadata, self, self->ddev, 5 * MIB, MIB));
	memset(self->img + 5 * MIB, 0, MIB);
	before = after;
	after = blocks_of(_metadata, self);
	EXPECT_GE(before - 2048, after) TH_LOG("st_blocks %lld -> %lld", before, after);
	fd = file_open(_metadata, self, O_RDONLY);
	EXPECT_EQ(5 * MIB, lseek(fd, 4 * MIB, SEEK_HOLE));
	close(fd);

	/* FALLOC_FL_ZERO_RANGE on the device is BLKZEROOUT's NOUNMAP. */
	ASSERT_EQ(0, fallocate(self->dev, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
			       7 * MIB + 4096, 8192));
	EXPECT_TRUE(dev_zero(_metadata, self, self->ddev, 7 * MIB + 4096, 8192));
	memset(self->img + 7 * MIB + 4096, 0, 8192);

	bad = file_cmp(_metadata, self, 0, FILE_SIZE, self->img);
	EXPECT_EQ(-1, bad) TH_LOG("file differs at %lld", bad);
	bad = dev_cmp(_metadata, self, self->ddev, self->img);
	EXPECT_EQ(-1, bad) TH_LOG("device differs at %lld", bad);
	detach(_metadata, self);
}

/* OR of the FIEMAP flags of the extents in [@off, @off + @len), and the
 * number of bytes mapped there. */
static unsigned int fiemap_flags(struct __test_metadata *_metadata,
				 int fd, off_t off, off_t len,
				 unsigned long long *mapped)
{
	static union {
		struct fiemap fm;
		char space[sizeof(struct fiemap) + 512 * sizeof(struct fiemap_extent)];
	} u;
	unsigned int flags = 0;

	*mapped = 0;
	memset(&u, 0, sizeof(u));
	u.fm.fm_start = off;
	u.fm.fm_length = len;
	u.fm.fm_extent_count = 512;
	ASSERT_EQ(0, ioctl(fd, FS_IOC_FIEMAP, &u.fm));
	for (unsigned int i = 0; i < u.fm.fm_mapped_extents; i++) {
		struct fiemap_extent *e = &u.fm.fm_extents[i];
		unsigned long long s = e->fe_logical, t = s + e->fe_length;

		flags |= e->fe_flags;
		if (s < (unsigned long long)off)
			s = off;
		if (t > (unsigned long long)(off + len))
			t = off + len;
		if (t > s)
			*mapped += t - s;
	}
	return flags;
}

/*
 * Flush: fsync of the device reaches the backing file (loop.c: REQ_OP_FLUSH
 * is vfs_fsync), so no delayed allocation is left there; after LOOP_CLR_FD
 * and the close, the data is in the file.
 */
TEST_F_TIMEOUT(io, flush_reaches_file, 300)
{
	unsigned long long mapped;
	unsigned int flags;
	long long bad;
	int fd;

	file_reset(_metadata, self, FILE_SIZE);
	attach(_metadata, self, variant, 0, 0, 0);
	memset(self->img, 0, FILE_SIZE);

	/* Buffered and O_DIRECT writes to a sparse file. */
	pattern_fill(self->buf, 2 * MIB, MIB, 71);
	ASSERT_EQ(2 * MIB, pwrite(self->dev, self->buf, 2 * MIB, MIB));
	pattern_fill(self->img + MIB, 2 * MIB, MIB, 71);
	pattern_fill(self->buf, MIB, 5 * MIB, 72);
	ASSERT_EQ(MIB, pwrite(self->ddev, self->buf, MIB, 5 * MIB));
	pattern_fill(self->img + 5 * MIB, MIB, 5 * MIB, 72);
	ASSERT_EQ(0, fsync(self->dev));

	fd = file_open(_metadata, self, O_RDONLY);
	flags = fiemap_flags(_metadata, fd, 0, FILE_SIZE, &mapped);
	EXPECT_EQ(0U, flags & (FIEMAP_EXTENT_DELALLOC | FIEMAP_EXTENT_UNKNOWN))
		TH_LOG("extent flags %#x after fsync of the device", flags);
	EXPECT_EQ(3ULL * MIB, mapped);
	close(fd);

	/* One more write, then LOOP_CLR_FD and close without a sync. */
	pattern_fill(self->buf, 65536, 7 * MIB, 73);
	ASSERT_EQ(65536, pwrite(self->dev, self->buf, 65536, 7 * MIB));
	pattern_fill(self->img + 7 * MIB, 65536, 7 * MIB, 73);
	ASSERT_EQ(0, fsync(self->dev));
	detach(_metadata, self);
	bad = file_cmp(_metadata, self, 0, FILE_SIZE, self->img);
	EXPECT_EQ(-1, bad) TH_LOG("file differs at %lld", bad);
}

/*
 * A backing file of 1000 bytes: the device is one sector; the last 488
 * bytes are out of reach and a write of sector 0 keeps the file's size.
 */
TEST_F(io, file_not_sector_multiple)
{
	struct stat st;
	long long bad;
	int fd;

	file_reset(_metadata, self, 1000);
	file_fill(_metadata, self, 0, 1000, 81);
	attach(_metadata, self, variant, 0, 0, 0);
	EXPECT_EQ(512ULL, self->devbytes);
	EXPECT_EQ(1, loop_sysfs_ll(self->idx, "size"));

	ASSERT_EQ(512, pread(self->ddev, self->buf, 4096, 0));
	EXPECT_EQ(-1, pattern_check(self->buf, 512, 0, 81));
	ASSERT_EQ(512, pread(self->dev, self->buf, 4096, 0));
	EXPECT_EQ(-1, pattern_check(self->buf, 512, 0, 81));
	EXPECT_EQ(0, pread(self->dev, self->buf, 512, 512));

	pattern_fill(self->buf, 512, 0, 82);
	ASSERT_EQ(512, pwrite(self->ddev, self->buf, 512, 0));
	ASSERT_EQ(0, fsync(self->ddev));
	detach(_metadata, self);

	ASSERT_EQ(0, stat(self->file, &st));
	EXPECT_EQ(1000, st.st_size);
	fd = file_open(_metadata, self, O_RDONLY);
	ASSERT_EQ(1000, pread(fd, self->buf, 4096, 0));
	close(fd);
	bad = pattern_check(self->buf, 512, 0, 82);
	EXPECT_EQ(-1, bad);
	bad = pattern_check(self->buf + 512, 488, 512, 81);
	EXPECT_EQ(-1, bad);
}

/*
 * The backing file shrinks under a bound device (whose size is not re-read):
 * reads within the file still work; a read the file answers with nothing
 * fails with EIO (lo_complete_rq: a zero-length read zero-fills and fails
 * the request), and so does one the file answers only in part (the part is
 * completed, the rest retried, gets nothing and fails the request).
 *
 * Not asserted, as loop.c's answer there is an accident: a read of a
 * sector that the file ends inside of at a byte that is not a sector
 * multiple. With buffered backing I/O the retry restarts at the sector
 * the short read ended in, so the tail of the buffer repeats data; with
 * direct backing I/O the retry is a misaligned O_DIRECT read (EINVAL).
 */
TEST_F(io, read_past_backing_eof)
{
	int fd;

	file_reset(_metadata, self, 64 * 1024);
	file_fill(_metadata, self, 0, 64 * 1024, 91);
	attach(_metadata, self, variant, 0, 0, 0);
	ASSERT_EQ(64ULL * 1024, self->devbytes);
	fd = file_open(_metadata, self, O_RDWR);
	ASSERT_EQ(0, ftruncate(fd, 32 * 1024));
	close(fd);
	ASSERT_EQ(0, ioctl(self->dev, BLKFLSBUF));
	EXPECT_EQ(128, loop_sysfs_ll(self->idx, "size"));

	/* Within the file. */
	ASSERT_EQ(4096, pread(self->ddev, self->buf, 4096, 0));
	EXPECT_EQ(-1, pattern_check(self->buf, 4096, 0, 91));
	ASSERT_EQ(4096, pread(self->ddev, self->buf, 4096, 28 * 1024));
	EXPECT_EQ(-1, pattern_check(self->buf, 4096, 28 * 1024, 91));
	ASSERT_EQ(4096, pread(self->dev, self->buf, 4096, 0));
	EXPECT_EQ(-1, pattern_check(self->buf, 4096, 0, 91));

	/* Past its end, and across it. */
	EXPECT_EQ(-1, pread(self->ddev, self->buf, 4096, 32 * 1024));
	EXPECT_EQ(EIO, errno);
	EXPECT_EQ(-1, pread(self->ddev, self->buf, 512, 40 * 1024));
	EXPECT_EQ(EIO, errno);
	EXPECT_EQ(-1, pread(self->ddev, self->buf, 8192, 28 * 1024));
	EXPECT_EQ(EIO, errno);
	EXPECT_EQ(-1, pread(self->dev, self->buf, 4096, 48 * 1024));
	EXPECT_EQ(EIO, errno);

	/* Writes past the end extend the file, which reads back again. */
	pattern_fill(self->buf, 8192, 40 * 1024, 92);
	ASSERT_EQ(8192, pwrite(self->ddev, self->buf, 8192, 40 * 1024));
	ASSERT_EQ(0, fsync(self->ddev));
	memset(self->buf, 0xee, 8192);
	ASSERT_EQ(8192, pread(self->ddev, self->buf, 8192, 40 * 1024));
	EXPECT_EQ(-1, pattern_check(self->buf, 8192, 40 * 1024, 92));
	/* The gap before is a hole now, which reads as zeroes. */
	memset(self->buf, 0xee, 4096);
	ASSERT_EQ(4096, pread(self->ddev, self->buf, 4096, 32 * 1024));
	for (int i = 0; i < 4096; i++)
		if (self->buf[i]) {
			EXPECT_EQ(0, self->buf[i]) TH_LOG("byte %d of the hole", i);
			break;
		}
	detach(_metadata, self);
	{
		struct stat st;

		ASSERT_EQ(0, stat(self->file, &st));
		EXPECT_EQ(48 * 1024, st.st_size);
	}
}

#define NWORKERS 4
#define CHUNK (64 * 1024)

struct worker {
	pthread_t thread;
	int t, fd;
	unsigned int seed;
	int err;
	long long bad;
};

/*
 * Worker @t owns every NWORKERS-th CHUNK of the device: it writes its
 * chunks in pieces of random sizes, then reads them back in pieces of
 * other random sizes and checks them.
 */
static void *worker_fn(void *arg)
{
	struct worker *w = arg;
	unsigned int rnd = w->t * 7 + w->seed;
	unsigned char *buf;

	w->bad = -1;
	if (posix_memalign((void **)&buf, 4096, CHUNK)) {
		w->err = ENOMEM;
		return NULL;
	}
	for (int pass = 0; pass < 2 && !w->err && w->bad < 0; pass++) {
		for (long long c = w->t; c < FILE_SIZE / CHUNK; c += NWORKERS) {
			for (size_t done = 0; done < CHUNK;) {
				size_t n = (rand_r(&rnd) % 32 + 1) * 512;
				off_t off = c * CHUNK + done;

				if (n > CHUNK - done)
					n = CHUNK - done;
				if (pass == 0) {
					pattern_fill(buf, n, off, w->seed);
					if (pwrite(w->fd, buf, n, off) != (ssize_t)n) {
						w->err = errno ? errno : EIO;
						goto out;
					}
				} else {
					if (pread(w->fd, buf, n, off) != (ssize_t)n) {
						w->err = errno ? errno : EIO;
						goto out;
					}
					if (pattern_check(buf, n, off, w->seed) >= 0) {
						w->bad = off + pattern_check(buf, n, off, w->seed);
						goto out;
					}
				}
				done += n;
			}
		}
	}
out:
	free(buf);
	return NULL;
}

/*
 * Several threads writing and reading the device at once (requests in
 * flight together; with direct backing I/O they complete asynchronously),
 * half through O_DIRECT descriptors and half through the page cache; then
 * the backing file holds each thread's data in each thread's chunks.
 */
TEST_F_TIMEOUT(io, concurrent_workers, 300)
{
	struct worker w[NWORKERS];
	long long bad;

	file_reset(_metadata, self, FILE_SIZE);
	attach(_metadata, self, variant, 0, 0, 0);
	for (int t = 0; t < NWORKERS; t++) {
		w[t].t = t;
		w[t].seed = 200 + t;
		w[t].err = 0;
		w[t].fd = loop_open(self->idx, O_RDWR | (t & 1 ? 0 : O_DIRECT));
		ASSERT_LE(0, w[t].fd);
	}
	for (int t = 0; t < NWORKERS; t++)
		ASSERT_EQ(0, pthread_create(&w[t].thread, NULL, worker_fn, &w[t]));
	for (int t = 0; t < NWORKERS; t++) {
		pthread_join(w[t].thread, NULL);
		EXPECT_EQ(0, w[t].err) TH_LOG("worker %d: %s", t, strerror(w[t].err));
		EXPECT_EQ(-1, w[t].bad) TH_LOG("worker %d: bad data at %lld", t, w[t].bad);
		ASSERT_EQ(0, fsync(w[t].fd));
		close(w[t].fd);
	}
	for (long long c = 0; c < FILE_SIZE / CHUNK; c++)
		pattern_fill(self->img + c * CHUNK, CHUNK, c * CHUNK,
			     200 + c % NWORKERS);
	bad = file_cmp(_metadata, self, 0, FILE_SIZE, self->img);
	EXPECT_EQ(-1, bad) TH_LOG("file differs at %lld", bad);
	detach(_metadata, self);
}

TEST_HARNESS_MAIN
