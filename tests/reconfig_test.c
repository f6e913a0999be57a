// SPDX-License-Identifier: GPL-2.0
/*
 * Reconfiguration under load (issue 12 item 2): data written through a
 * loop device while other threads reconfigure it is never lost or
 * corrupted, and every reconfiguration answers as loop.c does.
 *
 * writes_survive_reconfiguration: two writers (one O_DIRECT, one buffered
 * with fdatasync) write 4 KiB blocks of checkable data, each to its own
 * blocks, and read their acknowledged blocks back, while a third thread
 * cycles through LOOP_SET_DIRECT_IO on/off, LOOP_SET_BLOCK_SIZE
 * 512..4096, LOOP_SET_STATUS64 setting and clearing LO_FLAGS_AUTOCLEAR
 * (and once LO_FLAGS_PARTSCAN), LOOP_SET_CAPACITY with the backing file
 * grown and shrunk back (never under the written area; the new size must
 * show at once), and attempts that must fail: LOOP_CHANGE_FD on a
 * writable device (EINVAL), LOOP_CTL_REMOVE of the open device (EBUSY),
 * and unloading the driver (EBUSY/EAGAIN: the open device pins it). Then
 * LOOP_CLR_FD while the writers still write: the device stays bound (it
 * only turns autoclear on) and their writes still succeed; when they close
 * it detaches. Every block a writer had acknowledged reads back right from
 * the backing file and through the device bound again.
 *
 * change_fd_under_readers: a read-only device whose backing file is
 * swapped between two identical files by LOOP_CHANGE_FD (with direct-I/O
 * toggles and LOOP_SET_CAPACITY in between) while two readers, one
 * O_DIRECT and one buffered, read and check random blocks: every read
 * returns the right data and every swap succeeds and shows at once in
 * /sys/block/loopN/loop/backing_file.
 *
 * lower_detached_under_stacked_writers: the writers above on a loop device
 * stacked on another, whose LOOP_CLR_FD underneath them only marks it for
 * autoclear; both detach in turn once closed, and the data is in the file.
 *
 * Runs RL_QUICK 2 s, 10 s, RL_FULL 120 s per case (RECONFIG_SECONDS
 * overrides).
 */
#include "common.h"
#include "kselftest_harness.h"
#include "bind.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#define BLK 4096
#define DATA_BLOCKS 2048 /* 8 MiB written area */
#define NWRITERS 2

static int seconds(void)
{
	const char *s = getenv("RECONFIG_SECONDS");

	return s ? atoi(s) : tier_count(2, 10, 120);
}

/* What a thread saw that it should not have: counted, the first kept. */
struct faults {
	atomic_int n;
	char first[256];
};

static void fault(struct faults *f, const char *fmt, ...)
{
	va_list ap;

	if (atomic_fetch_add(&f->n, 1))
		return;
	va_start(ap, fmt);
	vsnprintf(f->first, sizeof(f->first), fmt, ap);
	va_end(ap);
}

/* An outcome the thread expected, counted by kind. */
struct tally {
	const char *what;
	atomic_int ok;
};

struct load {
	int idx;
	char dev[64];
	const char *file;
	atomic_int stop_reconf, stop_io;
	/* Seed of the last acknowledged write of each block; 0: never. */
	atomic_uint acked[DATA_BLOCKS];
	atomic_long writes, reads;
	struct faults bad;
	/* Reconfigurations done, per kind. */
	struct tally dio, bsize, status, capacity, change_fd, ctl_remove,
		rmmod;
};

static unsigned int rnd(unsigned int *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 8;
}

struct writer {
	struct load *l;
	int id;
	bool direct;
};

/* Block @k of writer @id's own: id + 1, id + 1 + NWRITERS, ... (block 0 stays
 * zero, so that a partition scan finds no table). */
static unsigned int own_block(int id, unsigned int k)
{
	return 1 + id + NWRITERS * (k % ((DATA_BLOCKS - 1) / NWRITERS));
}

/*
 * A writer: O_DIRECT writes are acknowledged when pwrite() returns;
 * buffered ones by the fdatasync() of their batch (up to 32 writes). A
 * block is not written again while its write waits in a batch.
 */
static void *writer(void *arg)
{
	struct writer *w = arg;
	struct load *l = w->l;
	unsigned int seed = w->id + 1, r = w->id + 17;
	unsigned int pb[32], ps[32], np = 0, recent[64], nrecent = 0;
	void *buf, *rbuf;
	int fd;

	if (posix_memalign(&buf, BLK, BLK) || posix_memalign(&rbuf, BLK, BLK)) {
		fault(&l->bad, "writer %d: out of memory", w->id);
		return NULL;
	}
	fd = open(l->dev, O_RDWR | O_CLOEXEC | (w->direct ? O_DIRECT : 0));
	if (fd < 0) {
		fault(&l->bad, "writer %d: open %s: %s", w->id, l->dev, strerror(errno));
		return NULL;
	}
	for (;;) {
		bool stop = atomic_load(&l->stop_io);
		unsigned int b = own_block(w->id, rnd(&r)), c, s;

		if (np && (stop || np == 32 || rnd(&r) % 8 == 0)) {
			if (fdatasync(fd)) {
				fault(&l->bad, "writer %d: fdatasync: %s", w->id,
				      strerror(errno));
				break;
			}
			while (np) {
				np--;
				atomic_store(&l->acked[pb[np]], ps[np]);
				recent[nrecent++ % 64] = pb[np];
			}
		}
		if (stop)
			break;
		for (unsigned int i = 0; i < np; i++)
			if (pb[i] == b)
				b = 0;
		if (!b)
			continue;
		seed += NWRITERS;
		pattern_fill(buf, BLK, (unsigned long long)b * BLK, seed);
		if (!w->direct)
			atomic_store(&l->acked[b], 0);
		if (pwrite(fd, buf, BLK, (off_t)b * BLK) != BLK) {
			fault(&l->bad, "writer %d: write block %u: %s", w->id, b,
			      strerror(errno));
			break;
		}
		atomic_fetch_add(&l->writes, 1);
		if (w->direct) {
			atomic_store(&l->acked[b], seed);
			recent[nrecent++ % 64] = b;
		} else {
			pb[np] = b;
			ps[np++] = seed;
		}

		/* Read one of this writer's recently acknowledged blocks back. */
		if (!nrecent)
			continue;
		c = recent[rnd(&r) % (nrecent < 64 ? nrecent : 64)];
		s = atomic_load(&l->acked[c]);
		if (!s)
			continue;
		if (pread(fd, rbuf, BLK, (off_t)c * BLK) != BLK) {
			fault(&l->bad, "writer %d: read block %u: %s", w->id, c,
			      strerror(errno));
			break;
		}
		atomic_fetch_add(&l->reads, 1);
		if (pattern_check(rbuf, BLK, (unsigned long long)c * BLK, s) >= 0)
			fault(&l->bad, "writer %d: block %u reads other data than its last write",
			      w->id, c);
	}
	close(fd);
	free(buf);
	free(rbuf);
	return NULL;
}

/* @ret of a reconfiguration that must succeed. */
static void expect_ok(struct load *l, struct tally *t, int ret)
{
	if (ret)
		fault(&l->bad, "%s: %s", t->what, strerror(errno));
	else
		atomic_fetch_add(&t->ok, 1);
}

/* @ret of one that must fail with @e1 or @e2. */
static void expect_err(struct load *l, struct tally *t, int ret, int e1, int e2)
{
	if (!ret)
		fault(&l->bad, "%s succeeded", t->what);
	else if (errno != e1 && errno != e2)
		fault(&l->bad, "%s: %s, not %s", t->what, strerror(errno), strerror(e1));
	else
		atomic_fetch_add(&t->ok, 1);
}

static void *reconf(void *arg)
{
	struct load *l = arg;
	int fd = open(l->dev, O_RDONLY | O_CLOEXEC);
	int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	int file = open(l->file, O_RDWR | O_CLOEXEC);
	int other = open(l->file, O_RDONLY | O_CLOEXEC);
	static const unsigned long sizes[] = { 512, 1024, 2048, 4096 };
	unsigned int step = 0;
	bool partscan = false;

	if (fd < 0 || ctl < 0 || file < 0 || other < 0) {
		fault(&l->bad, "reconfigure: open: %s", strerror(errno));
		goto out;
	}
	while (!atomic_load(&l->stop_reconf)) {
		struct loop_info64 info;
		unsigned long long size;
		off_t fsize;

		switch (step++ % 7) {
		case 0:
			expect_ok(l, &l->dio, ioctl(fd, LOOP_SET_DIRECT_IO, (step / 7) % 2));
			break;
		case 1:
			expect_ok(l, &l->bsize, ioctl(fd, LOOP_SET_BLOCK_SIZE,
						     sizes[(step / 7) % 4]));
			break;
		case 2:
			if (ioctl(fd, LOOP_GET_STATUS64, &info)) {
				fault(&l->bad, "LOOP_GET_STATUS64: %s", strerror(errno));
				break;
			}
			info.lo_flags ^= LO_FLAGS_AUTOCLEAR;
			if (!partscan && step > 20) {
				info.lo_flags |= LO_FLAGS_PARTSCAN;
				partscan = true;
			}
			expect_ok(l, &l->status, ioctl(fd, LOOP_SET_STATUS64, &info));
			if (info.lo_flags & LO_FLAGS_AUTOCLEAR) {
				info.lo_flags &= ~LO_FLAGS_AUTOCLEAR;
				expect_ok(l, &l->status, ioctl(fd, LOOP_SET_STATUS64, &info));
			}
			break;
		case 3:
			fsize = (off_t)DATA_BLOCKS * BLK + (off_t)((step / 7) % 4) * MIB;
			if (ftruncate(file, fsize)) {
				fault(&l->bad, "truncate backing file: %s", strerror(errno));
				break;
			}
			expect_ok(l, &l->capacity, ioctl(fd, LOOP_SET_CAPACITY, 0));
			if (ioctl(fd, BLKGETSIZE64, &size) || size != (unsigned long long)fsize)
				fault(&l->bad, "after LOOP_SET_CAPACITY to %lld bytes the device has %llu",
				      (long long)fsize, size);
			break;
		case 4:
			expect_err(l, &l->change_fd, ioctl(fd, LOOP_CHANGE_FD, other),
				   EINVAL, EINVAL);
			break;
		case 5:
			expect_err(l, &l->ctl_remove, ioctl(ctl, LOOP_CTL_REMOVE, l->idx),
				   EBUSY, EBUSY);
			break;
		case 6:
			expect_err(l, &l->rmmod, syscall(SYS_delete_module, drv_name(),
							 O_NONBLOCK), EBUSY, EAGAIN);
			break;
		}
	}
	/* Leave the device as set up: autoclear off, the file at its size. */
	struct loop_info64 info;

	if (!ioctl(fd, LOOP_GET_STATUS64, &info) && (info.lo_flags & LO_FLAGS_AUTOCLEAR)) {
		info.lo_flags &= ~LO_FLAGS_AUTOCLEAR;
		expect_ok(l, &l->status, ioctl(fd, LOOP_SET_STATUS64, &info));
	}
out:
	if (fd >= 0)
		close(fd);
	if (ctl >= 0)
		close(ctl);
	if (file >= 0)
		close(file);
	if (other >= 0)
		close(other);
	return NULL;
}

static void report(struct __test_metadata *_metadata, struct load *l)
{
	const struct tally *t[] = { &l->dio, &l->bsize, &l->status, &l->capacity,
				    &l->change_fd, &l->ctl_remove, &l->rmmod };

	TH_LOG("%ld writes, %ld reads checked; unexpected: %d%s%s", atomic_load(&l->writes),
	       atomic_load(&l->reads), atomic_load(&l->bad.n),
	       atomic_load(&l->bad.n) ? ", first: " : "", l->bad.first);
	for (unsigned int i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		TH_LOG("%s: %d as expected", t[i]->what, atomic_load(&t[i]->ok));
}

/* Poll (10 s) until /dev/loop@idx is unbound; true when it is. */
static bool wait_unbound(int idx)
{
	for (int i = 0; i < 1000; i++) {
		if (!loop_dir(idx))
			return true;
		usleep(10000);
	}
	return false;
}

/* Every acknowledged block of @l reads back right from @fd; returns how many. */
static int verify(struct __test_metadata *_metadata, struct load *l, int fd,
		  const char *what)
{
	void *buf;
	int n = 0;

	ASSERT_EQ(0, posix_memalign(&buf, BLK, BLK));
	for (unsigned int b = 1; b < DATA_BLOCKS; b++) {
		unsigned int s = atomic_load(&l->acked[b]);

		if (!s)
			continue;
		ASSERT_EQ(BLK, pread(fd, buf, BLK, (off_t)b * BLK))
			TH_LOG("%s: read block %u: %s", what, b, strerror(errno));
		EXPECT_GT(0, pattern_check(buf, BLK, (unsigned long long)b * BLK, s))
			TH_LOG("%s: block %u lost its acknowledged write", what, b);
		n++;
	}
	free(buf);
	return n;
}

TEST_F_TIMEOUT(cfg, writes_survive_reconfiguration, 900)
{
	struct load *l = calloc(1, sizeof(*l));
	struct writer w[NWRITERS];
	pthread_t wt[NWRITERS], rt;
	int d, ffd, n;

	ASSERT_NE(NULL, l);
	l->dio.what = "LOOP_SET_DIRECT_IO";
	l->bsize.what = "LOOP_SET_BLOCK_SIZE";
	l->status.what = "LOOP_SET_STATUS64 (autoclear, partscan)";
	l->capacity.what = "LOOP_SET_CAPACITY (file grown/shrunk)";
	l->change_fd.what = "LOOP_CHANGE_FD on a writable device";
	l->ctl_remove.what = "LOOP_CTL_REMOVE of the open device";
	l->rmmod.what = "unloading the driver";

	l->file = mkfile(_metadata, self, (off_t)DATA_BLOCKS * BLK, 0);
	d = get_dev(_metadata, self, O_RDWR);
	l->idx = self->idx[d];
	snprintf(l->dev, sizeof(l->dev), "/dev/loop%d", l->idx);
	ffd = xopen(_metadata, l->file, O_RDWR);
	ASSERT_EQ(0, configure(self->fd[d], ffd, 0, 0, 0, 0));

	for (int i = 0; i < NWRITERS; i++) {
		w[i] = (struct writer){ .l = l, .id = i, .direct = i == 0 };
		ASSERT_EQ(0, pthread_create(&wt[i], NULL, writer, &w[i]));
	}
	ASSERT_EQ(0, pthread_create(&rt, NULL, reconf, l));
	sleep(seconds());
	atomic_store(&l->stop_reconf, 1);
	pthread_join(rt, NULL);

	/*
	 * LOOP_CLR_FD with the writers' opens still there: the device stays
	 * bound and usable, autoclear on, until the last close.
	 */
	long before = atomic_load(&l->writes);

	EXPECT_EQ(0, ioctl(self->fd[d], LOOP_CLR_FD));
	for (int i = 0; i < 2000 && atomic_load(&l->writes) < before + 10; i++)
		usleep(10000);
	EXPECT_LE(before + 10, atomic_load(&l->writes))
		TH_LOG("writes stopped after LOOP_CLR_FD with the device open");
	EXPECT_TRUE(loop_dir(l->idx));
	atomic_store(&l->stop_io, 1);
	for (int i = 0; i < NWRITERS; i++)
		pthread_join(wt[i], NULL);
	report(_metadata, l);
	EXPECT_EQ(0, atomic_load(&l->bad.n)) TH_LOG("first: %s", l->bad.first);

	close(self->fd[d]);
	self->fd[d] = -1;
	ASSERT_TRUE(wait_unbound(l->idx))
		TH_LOG("loop%d still bound 10 s after its last close with autoclear", l->idx);

	n = verify(_metadata, l, ffd, "backing file");
	close(ffd);
	TH_LOG("%d acknowledged blocks read back from the backing file", n);
	EXPECT_LT(0, n);

	/* And through the device, bound again. */
	d = get_dev(_metadata, self, O_RDWR | O_DIRECT);
	ffd = xopen(_metadata, l->file, O_RDWR);
	ASSERT_EQ(0, configure(self->fd[d], ffd, LO_FLAGS_DIRECT_IO, 0, 0, 0));
	close(ffd);
	EXPECT_EQ(n, verify(_metadata, l, self->fd[d], "device bound again"));
	free(l);
}

/*
 * A stacked device whose lower device is detached underneath (issue 12
 * item 3): loopA over loopB over a file, the two writers on loopA. LOOP_CLR_FD
 * of loopB, which loopA holds open, only turns its autoclear on: loopB
 * stays bound and the writes through loopA go on succeeding. When loopA is
 * detached and closed, loopB loses its last opener and detaches too, and
 * every acknowledged write is in the file.
 */
TEST_F_TIMEOUT(cfg, lower_detached_under_stacked_writers, 600)
{
	struct load *l = calloc(1, sizeof(*l));
	struct writer w[NWRITERS];
	pthread_t wt[NWRITERS];
	int a, b, ffd, bfd, n;
	long before;

	ASSERT_NE(NULL, l);
	l->file = mkfile(_metadata, self, (off_t)DATA_BLOCKS * BLK, 0);
	b = get_dev(_metadata, self, O_RDWR);
	ffd = xopen(_metadata, l->file, O_RDWR);
	ASSERT_EQ(0, configure(self->fd[b], ffd, 0, 0, 0, 0));
	a = get_dev(_metadata, self, O_RDWR);
	bfd = loop_open(self->idx[b], O_RDWR);
	ASSERT_LE(0, bfd);
	ASSERT_EQ(0, configure(self->fd[a], bfd, 0, 0, 0, 0));
	close(bfd);
	l->idx = self->idx[a];
	snprintf(l->dev, sizeof(l->dev), "/dev/loop%d", l->idx);

	for (int i = 0; i < NWRITERS; i++) {
		w[i] = (struct writer){ .l = l, .id = i, .direct = i == 0 };
		ASSERT_EQ(0, pthread_create(&wt[i], NULL, writer, &w[i]));
	}
	sleep(seconds() / 3 + 1);
	before = atomic_load(&l->writes);
	EXPECT_EQ(0, ioctl(self->fd[b], LOOP_CLR_FD));
	for (int i = 0; i < 2000 && atomic_load(&l->writes) < before + 10; i++)
		usleep(10000);
	EXPECT_LE(before + 10, atomic_load(&l->writes))
		TH_LOG("writes through loop%d stopped after LOOP_CLR_FD of loop%d under it",
		       self->idx[a], self->idx[b]);
	EXPECT_TRUE(loop_dir(self->idx[b]));
	atomic_store(&l->stop_io, 1);
	for (int i = 0; i < NWRITERS; i++)
		pthread_join(wt[i], NULL);
	TH_LOG("%ld writes, %ld reads checked; unexpected: %d%s%s", atomic_load(&l->writes),
	       atomic_load(&l->reads), atomic_load(&l->bad.n),
	       atomic_load(&l->bad.n) ? ", first: " : "", l->bad.first);
	EXPECT_EQ(0, atomic_load(&l->bad.n));

	/* loopA goes; with it loopB's last opener. */
	EXPECT_EQ(0, ioctl(self->fd[a], LOOP_CLR_FD));
	close(self->fd[a]);
	self->fd[a] = -1;
	EXPECT_TRUE(wait_unbound(self->idx[a]));
	EXPECT_TRUE(loop_dir(self->idx[b])) TH_LOG("loop%d detached while still open here",
						    self->idx[b]);
	close(self->fd[b]);
	self->fd[b] = -1;
	EXPECT_TRUE(wait_unbound(self->idx[b]))
		TH_LOG("loop%d still bound after its last opener went", self->idx[b]);

	n = verify(_metadata, l, ffd, "backing file");
	close(ffd);
	TH_LOG("%d acknowledged blocks read back from the backing file", n);
	EXPECT_LT(0, n);
	free(l);
}

struct reader {
	struct load *l;
	int id;
	bool direct;
};

static void *reader(void *arg)
{
	struct reader *rd = arg;
	struct load *l = rd->l;
	unsigned int r = rd->id + 5;
	void *buf;
	int fd;

	if (posix_memalign(&buf, BLK, BLK)) {
		fault(&l->bad, "reader %d: out of memory", rd->id);
		return NULL;
	}
	fd = open(l->dev, O_RDONLY | O_CLOEXEC | (rd->direct ? O_DIRECT : 0));
	if (fd < 0) {
		fault(&l->bad, "reader %d: open %s: %s", rd->id, l->dev, strerror(errno));
		free(buf);
		return NULL;
	}
	while (!atomic_load(&l->stop_io)) {
		unsigned int b = rnd(&r) % DATA_BLOCKS;

		if (pread(fd, buf, BLK, (off_t)b * BLK) != BLK) {
			fault(&l->bad, "reader %d: read block %u: %s", rd->id, b,
			      strerror(errno));
			break;
		}
		atomic_fetch_add(&l->reads, 1);
		if (pattern_check(buf, BLK, (unsigned long long)b * BLK, 7) >= 0)
			fault(&l->bad, "reader %d: block %u has other data", rd->id, b);
		/* The buffered reader also reads what the page cache dropped. */
		if (!rd->direct && b % 16 == 0)
			posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	}
	close(fd);
	free(buf);
	return NULL;
}

TEST_F_TIMEOUT(cfg, change_fd_under_readers, 900)
{
	struct load *l = calloc(1, sizeof(*l));
	struct reader rd[2];
	pthread_t t[2];
	const char *files[2];
	int d, fds[2];
	time_t end;
	unsigned int k = 0;

	ASSERT_NE(NULL, l);
	l->change_fd.what = "LOOP_CHANGE_FD";
	l->dio.what = "LOOP_SET_DIRECT_IO";
	l->capacity.what = "LOOP_SET_CAPACITY";
	for (int i = 0; i < 2; i++) {
		files[i] = mkfile(_metadata, self, (off_t)DATA_BLOCKS * BLK, 7);
		fds[i] = xopen(_metadata, files[i], O_RDONLY);
	}
	d = get_dev(_metadata, self, O_RDONLY);
	l->idx = self->idx[d];
	snprintf(l->dev, sizeof(l->dev), "/dev/loop%d", l->idx);
	ASSERT_EQ(0, configure(self->fd[d], fds[0], LO_FLAGS_READ_ONLY, 0, 0, 0));

	for (int i = 0; i < 2; i++) {
		rd[i] = (struct reader){ .l = l, .id = i, .direct = i == 0 };
		ASSERT_EQ(0, pthread_create(&t[i], NULL, reader, &rd[i]));
	}
	end = time(NULL) + seconds();
	while (time(NULL) < end) {
		char shown[4096];

		k++;
		expect_ok(l, &l->change_fd, ioctl(self->fd[d], LOOP_CHANGE_FD, fds[k % 2]));
		if (loop_sysfs_read(l->idx, "loop/backing_file", shown, sizeof(shown)) ||
		    strcmp(shown, files[k % 2]))
			fault(&l->bad, "after LOOP_CHANGE_FD to %s, backing_file shows %s",
			      files[k % 2], shown);
		if (k % 3 == 0)
			expect_ok(l, &l->dio, ioctl(self->fd[d], LOOP_SET_DIRECT_IO, (k / 3) % 2));
		if (k % 5 == 0)
			expect_ok(l, &l->capacity, ioctl(self->fd[d], LOOP_SET_CAPACITY, 0));
	}
	atomic_store(&l->stop_io, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	TH_LOG("%ld reads checked; %d LOOP_CHANGE_FD, %d LOOP_SET_DIRECT_IO, %d LOOP_SET_CAPACITY; unexpected: %d%s%s",
	       atomic_load(&l->reads), atomic_load(&l->change_fd.ok),
	       atomic_load(&l->dio.ok), atomic_load(&l->capacity.ok),
	       atomic_load(&l->bad.n), atomic_load(&l->bad.n) ? ", first: " : "",
	       l->bad.first);
	EXPECT_EQ(0, atomic_load(&l->bad.n));
	EXPECT_LT(0, atomic_load(&l->reads));
	EXPECT_LT(1, atomic_load(&l->change_fd.ok));
	for (int i = 0; i < 2; i++)
		close(fds[i]);
	free(l);
}

TEST_HARNESS_MAIN
