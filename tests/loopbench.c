// SPDX-License-Identifier: GPL-2.0
/*
 * The parts of make bench (tests/bench.sh) that fio does not do. Not a test.
 *
 *   loopbench ctl FILE N    binds N loop devices to FILE as Android's apexd
 *                           does at boot (LOOP_CTL_GET_FREE, then
 *                           LOOP_CONFIGURE read-only, direct I/O, no
 *                           partition scan), then detaches them all
 *                           (LOOP_CLR_FD, close); prints
 *                           "ctl N CONFIGURE_NS DETACH_NS", nanoseconds per
 *                           device of each phase (CLOCK_MONOTONIC)
 *   loopbench attach FILE N the same on N devices added beforehand and
 *                           never opened (LOOP_CTL_ADD of indices 4096 on,
 *                           not timed), as apexd binds the devices it
 *                           pre-allocates: each opened, LOOP_CONFIGUREd and
 *                           closed, then each detached; prints
 *                           "attach N CONFIGURE_NS DETACH_NS", then removes
 *                           them
 *   loopbench mem FILE N    kernel memory of N idle bound devices: MemFree
 *                           and Slab of /proc/meminfo before and after
 *                           binding (caches dropped around each reading);
 *                           prints "mem N MEMFREE_DELTA_KB SLAB_DELTA_KB",
 *                           then detaches them
 *   loopbench idle N        kernel memory of N devices added and never
 *                           configured (LOOP_CTL_ADD of indices 4096 on),
 *                           as mem; prints "idle N MEMFREE_DELTA_KB
 *                           SLAB_DELTA_KB", then removes them
 *   loopbench fs DIR SECS   file system loop on DIR for SECS seconds:
 *                           create a file, write 16 KiB, fsync, close
 *                           (unlinking the file of 256 iterations before);
 *                           prints "fs OPS_PER_SEC"
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

/*
 * The first index of the devices "attach" and "idle" add themselves: far
 * above those the guest or the other rows use, so that LOOP_CTL_ADD finds
 * them free.
 */
#define FIRST_ADDED 4096

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/*
 * Binds /dev/loopIDX to file as apexd does (LOOP_CONFIGURE read-only,
 * direct I/O, no partition scan) and closes it.
 */
static void configure_one(int idx, const char *file)
{
	struct loop_config c;
	char dev[32];
	int fd, bfd;

	snprintf(dev, sizeof(dev), "/dev/loop%d", idx);
	fd = open(dev, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		die(dev);
	bfd = open(file, O_RDONLY | O_CLOEXEC | O_DIRECT);
	if (bfd < 0)
		die(file);
	memset(&c, 0, sizeof(c));
	c.fd = bfd;
	c.info.lo_flags = LO_FLAGS_READ_ONLY | LO_FLAGS_DIRECT_IO;
	strncpy((char *)c.info.lo_file_name, file, LO_NAME_SIZE - 1);
	if (ioctl(fd, LOOP_CONFIGURE, &c))
		die("LOOP_CONFIGURE");
	close(bfd);
	close(fd);
}

/* Binds a free loop device to file; returns its index. */
static int bind_one(int ctl, const char *file)
{
	int idx = ioctl(ctl, LOOP_CTL_GET_FREE);

	if (idx < 0)
		die("LOOP_CTL_GET_FREE");
	configure_one(idx, file);
	return idx;
}

static void detach_one(int idx)
{
	char dev[32];
	int fd;

	snprintf(dev, sizeof(dev), "/dev/loop%d", idx);
	fd = open(dev, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die(dev);
	if (ioctl(fd, LOOP_CLR_FD))
		die("LOOP_CLR_FD");
	close(fd);
}

static int *bind_all(const char *file, int n)
{
	int *idx = calloc(n, sizeof(*idx));
	int ctl, i;

	if (!idx)
		die("calloc");
	ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		die("/dev/loop-control");
	for (i = 0; i < n; i++)
		idx[i] = bind_one(ctl, file);
	close(ctl);
	return idx;
}

/* kB of a /proc/meminfo field, after dropping the caches. */
static long meminfo_once(const char *field)
{
	char line[256];
	size_t len = strlen(field);
	long kb = -1;
	FILE *f;

	sync();
	f = fopen("/proc/sys/vm/drop_caches", "w");
	if (f) {
		fputs("3\n", f);
		fclose(f);
	}
	f = fopen("/proc/meminfo", "r");
	if (!f)
		die("/proc/meminfo");
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, len) && line[len] == ':')
			kb = strtol(line + len + 1, NULL, 10);
	fclose(f);
	return kb;
}

/*
 * The same once the kernel's deferred frees have settled: the devices of
 * the measurement before (removed, or their driver unloaded) are freed
 * partly after RCU grace periods and from workqueues, and a reading taken
 * before that counts their memory as this measurement's. Reads every
 * 200 ms until Slab moves by less than 64 kB between two readings (at
 * most 10 s).
 */
static long meminfo(const char *field)
{
	long prev = meminfo_once("Slab"), cur;
	int i;

	for (i = 0; i < 50; i++) {
		usleep(200000);
		cur = meminfo_once("Slab");
		if (labs(cur - prev) < 64)
			break;
		prev = cur;
	}
	return meminfo_once(field);
}

static int fs_loop(const char *dir, double secs)
{
	static char buf[16384];
	long long end, start = now_ns();
	char name[4096];
	long i;
	int fd;

	memset(buf, 0x5a, sizeof(buf));
	end = start + (long long)(secs * 1e9);
	for (i = 0; now_ns() < end; i++) {
		snprintf(name, sizeof(name), "%s/f%ld", dir, i % 256);
		unlink(name);
		fd = open(name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0)
			die(name);
		if (write(fd, buf, sizeof(buf)) != sizeof(buf))
			die("write");
		if (fsync(fd))
			die("fsync");
		close(fd);
	}
	printf("fs %.0f\n", i * 1e9 / (now_ns() - start));
	return 0;
}

/* Adds (add) or removes the devices first..first+n-1. */
static void add_remove(int add, int first, int n)
{
	int ctl, i;

	ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		die("/dev/loop-control");
	for (i = first; i < first + n; i++) {
		/* LOOP_CTL_ADD returns the index, LOOP_CTL_REMOVE 0. */
		if (add && ioctl(ctl, LOOP_CTL_ADD, i) != i)
			die("LOOP_CTL_ADD");
		if (!add && ioctl(ctl, LOOP_CTL_REMOVE, i) != 0)
			die("LOOP_CTL_REMOVE");
	}
	close(ctl);
}

int main(int argc, char **argv)
{
	long long t0, t1, t2;
	long free0, slab0;
	int *idx, n, i;

	if (argc == 3 && !strcmp(argv[1], "idle")) {
		n = atoi(argv[2]);
		free0 = meminfo("MemFree");
		slab0 = meminfo("Slab");
		add_remove(1, FIRST_ADDED, n);
		printf("idle %d %ld %ld\n", n, free0 - meminfo("MemFree"),
		       meminfo("Slab") - slab0);
		add_remove(0, FIRST_ADDED, n);
		return 0;
	}
	if (argc != 4) {
		fprintf(stderr, "usage: %s ctl|attach|mem FILE N | idle N | fs DIR SECS\n", argv[0]);
		return 2;
	}
	if (!strcmp(argv[1], "fs"))
		return fs_loop(argv[2], atof(argv[3]));
	n = atoi(argv[3]);
	if (!strcmp(argv[1], "ctl")) {
		t0 = now_ns();
		idx = bind_all(argv[2], n);
		t1 = now_ns();
		for (i = 0; i < n; i++)
			detach_one(idx[i]);
		t2 = now_ns();
		printf("ctl %d %lld %lld\n", n, (t1 - t0) / n, (t2 - t1) / n);
	} else if (!strcmp(argv[1], "attach")) {
		add_remove(1, FIRST_ADDED, n);
		t0 = now_ns();
		for (i = 0; i < n; i++)
			configure_one(FIRST_ADDED + i, argv[2]);
		t1 = now_ns();
		for (i = 0; i < n; i++)
			detach_one(FIRST_ADDED + i);
		t2 = now_ns();
		printf("attach %d %lld %lld\n", n, (t1 - t0) / n, (t2 - t1) / n);
		add_remove(0, FIRST_ADDED, n);
	} else if (!strcmp(argv[1], "mem")) {
		free0 = meminfo("MemFree");
		slab0 = meminfo("Slab");
		idx = bind_all(argv[2], n);
		printf("mem %d %ld %ld\n", n, free0 - meminfo("MemFree"),
		       meminfo("Slab") - slab0);
		for (i = 0; i < n; i++)
			detach_one(idx[i]);
	} else {
		fprintf(stderr, "%s: unknown mode %s\n", argv[0], argv[1]);
		return 2;
	}
	return 0;
}
