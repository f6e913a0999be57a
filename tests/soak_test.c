// SPDX-License-Identifier: GPL-2.0
/*
 * Leak soak (issue 12 item 4): many whole lives of a loop device, each
 * LOOP_CTL_ADD, open, LOOP_CONFIGURE (direct I/O on every other cycle),
 * 64 KiB written and read back, LOOP_CLR_FD, close, LOOP_CTL_REMOVE, and
 * the kernel's slab memory measured before and after: what a cycle leaves
 * behind would grow it cycle after cycle.
 *
 * The slab total is summed from /proc/slabinfo (or taken from /proc/meminfo
 * where there is none) after every cache was
 * shrunk (/sys/kernel/slab/NAME/shrink), which also returns the objects
 * KASAN holds in its quarantine. Two equal runs of cycles after a warm-up:
 * the second may grow the total by at most SLACK bytes per cycle, far
 * below what one device costs (a gendisk, a queue, a tag set: hundreds of
 * KiB, Documentation/user-guide.rst). Objects that leak unreferenced are
 * found by kmemleak: tests/run.sh scans after the last program and fails
 * on any report.
 *
 * Cycles per run: RL_QUICK 10, 30, RL_FULL 800 (1 801 in all: about 15 min
 * on the test kernel, within tests/run.sh's 30 minutes per program);
 * SOAK_CYCLES overrides.
 */
#include "common.h"

#include <dirent.h>
#include <limits.h>
#include <linux/fs.h>

#include "kselftest_harness.h"

#define IO (64 * 1024)
/*
 * Growth per cycle that, seen in both runs, is a leak. A leaked device
 * (gendisk, queue, hardware contexts, kobjects) is tens of KiB of slab;
 * measured noise with drop_caches and shrinking, 150 cycles: under
 * 1.2 KiB per cycle either way.
 */
#define SLACK 2048

static int cycles(void)
{
	const char *s = getenv("SOAK_CYCLES");

	return s ? atoi(s) : tier_count(10, 30, 800);
}

/* Shrink every slab cache (and drain KASAN's quarantine of it). */
static void shrink_slabs(void)
{
	DIR *d = opendir("/sys/kernel/slab");
	struct dirent *e;
	char p[512];

	if (!d)
		return;
	while ((e = readdir(d))) {
		int fd;

		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "/sys/kernel/slab/%s/shrink", e->d_name);
		fd = open(p, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (write(fd, "1", 1) < 0) {
			/* Not every cache can be shrunk; the sum still counts it. */
		}
		close(fd);
	}
	closedir(d);
}

#define MAX_CACHES 1024

/* A snapshot of /proc/slabinfo: bytes in use per cache, and their sum. */
struct slabs {
	int n;
	char name[MAX_CACHES][64];
	long long bytes[MAX_CACHES];
	long long total;
};

/*
 * Take @s after dropping the page cache (and the buffer heads on it) and
 * the dentry and inode caches (the device nodes and
 * sysfs directories of the cycles) and shrinking every slab cache, so that
 * what is left is what is still in use. Returns false if neither file
 * tells.
 */
static bool slab_snapshot(struct slabs *s)
{
	FILE *f;
	char line[512];
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);

	if (fd >= 0) {
		if (write(fd, "3", 1) < 0) {
			/* Then only the shrink below. */
		}
		close(fd);
	}
	shrink_slabs();
	s->n = 0;
	s->total = 0;
	f = fopen("/proc/slabinfo", "r");
	if (!f) {
		/*
		 * No slabinfo without CONFIG_SLUB_DEBUG (the release kernel,
		 * where loop.ko runs): the total of /proc/meminfo, whole pages.
		 */
		long long kb;

		f = fopen("/proc/meminfo", "r");
		while (f && fgets(line, sizeof(line), f))
			if (sscanf(line, "Slab: %lld kB", &kb) == 1)
				s->total = kb * 1024;
		if (f)
			fclose(f);
		return s->total > 0;
	}
	while (fgets(line, sizeof(line), f) && s->n < MAX_CACHES) {
		long long active, total, size;

		if (sscanf(line, "%63s %lld %lld %lld", s->name[s->n], &active, &total,
			   &size) != 4)
			continue;
		s->bytes[s->n] = active * size;
		s->total += active * size;
		s->n++;
	}
	fclose(f);
	return s->total > 0;
}

/* Log the caches that grew most from @a to @b. */
static void log_growth(struct __test_metadata *_metadata, const struct slabs *a,
		       const struct slabs *b)
{
	long long shown = LLONG_MAX;

	for (int k = 0; k < 5; k++) {
		long long best = 0;
		int bi = -1;

		for (int i = 0; i < b->n; i++) {
			long long before = 0, d;

			for (int j = 0; j < a->n; j++)
				if (!strcmp(a->name[j], b->name[i]))
					before = a->bytes[j];
			d = b->bytes[i] - before;
			if (d > best && d < shown) {
				best = d;
				bi = i;
			}
		}
		if (bi < 0)
			break;
		TH_LOG("  %s %+lld bytes", b->name[bi], best);
		shown = best;
	}
}

/* One life of a device on @file; 0, or the step that failed (with errno). */
static const char *cycle(const char *file, int n, void *buf, void *rbuf)
{
	int ctl, idx, fd, ffd;
	const char *fail = NULL;

	ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		return "open /dev/loop-control";
	idx = ioctl(ctl, LOOP_CTL_ADD, -1L);
	if (idx < 0) {
		close(ctl);
		return "LOOP_CTL_ADD";
	}
	fd = loop_open(idx, O_RDWR | O_DIRECT);
	ffd = open(file, O_RDWR | O_CLOEXEC);
	if (fd < 0 || ffd < 0) {
		fail = "open device or file";
		goto out;
	}
	if (configure(fd, ffd, n % 2 ? LO_FLAGS_DIRECT_IO : 0, 0, 0, 0)) {
		fail = "LOOP_CONFIGURE";
		goto out;
	}
	pattern_fill(buf, IO, (unsigned long long)(n % 16) * IO, n + 1);
	if (pwrite(fd, buf, IO, (off_t)(n % 16) * IO) != IO) {
		fail = "write";
	} else if (pread(fd, rbuf, IO, (off_t)(n % 16) * IO) != IO) {
		fail = "read";
	} else if (pattern_check(rbuf, IO, (unsigned long long)(n % 16) * IO, n + 1) >= 0) {
		errno = EIO;
		fail = "read back what was written";
	}
	if (ioctl(fd, LOOP_CLR_FD) && !fail)
		fail = "LOOP_CLR_FD";
out:
	if (ffd >= 0)
		close(ffd);
	if (fd >= 0)
		close(fd);
	/* The last close detached it; now it goes. */
	if (getenv("SOAK_KEEP_DEVICES")) {
		/* Kept: the test's own proof that it sees a leak. */
	} else if (ioctl(ctl, LOOP_CTL_REMOVE, idx) && !fail)
		fail = "LOOP_CTL_REMOVE";
	close(ctl);
	return fail;
}

FIXTURE(soak) {};
FIXTURE_SETUP(soak) {}
FIXTURE_TEARDOWN(soak) {}

TEST_F_TIMEOUT(soak, add_bind_io_unbind_remove_cycles, 7200)
{
	int n = cycles(), warm = n / 4 + 1, c = 0;
	struct slabs *s = calloc(3, sizeof(*s));
	long long g1, g2;
	char file[256];
	void *buf, *rbuf;
	const char *fail;
	int fd;

	ASSERT_NE(NULL, s);
	ASSERT_EQ(0, posix_memalign(&buf, 4096, IO));
	ASSERT_EQ(0, posix_memalign(&rbuf, 4096, IO));
	snprintf(file, sizeof(file), "%s/soak-%d", scratch_dir(), getpid());
	fd = open(file, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, 16 * IO));
	close(fd);

	/* A warm-up, then two runs of n cycles, a snapshot before each. */
	for (int run = 0; run < 3; run++) {
		int end = c + (run ? n : warm);

		if (run)
			ASSERT_TRUE(slab_snapshot(&s[run - 1])) TH_LOG("no /proc/slabinfo");
		for (; c < end; c++) {
			fail = cycle(file, c, buf, rbuf);
			ASSERT_EQ(NULL, fail) TH_LOG("cycle %d: %s: %s", c, fail,
						     strerror(errno));
		}
	}
	ASSERT_TRUE(slab_snapshot(&s[2]));
	unlink(file);
	g1 = (s[1].total - s[0].total) / n;
	g2 = (s[2].total - s[1].total) / n;
	TH_LOG("%d cycles; slab after the warm-up %lld KiB, then %+lld and %+lld bytes per cycle",
	       c, s[0].total / 1024, g1, g2);
	TH_LOG("grew most over both runs:");
	log_growth(_metadata, &s[0], &s[2]);
	/*
	 * A leak grows the total in both runs alike; what the rest of the
	 * system does in the meantime moves it either way.
	 */
	EXPECT_FALSE(g1 > SLACK && g2 > SLACK)
		TH_LOG("slab grew in both runs of %d cycles: %+lld and %+lld bytes per cycle",
		       n, g1, g2);
	free(s);
	free(buf);
	free(rbuf);
}

TEST_HARNESS_MAIN
