// SPDX-License-Identifier: GPL-2.0
/*
 * Allocation failures in the driver's own paths, one after the other, the
 * way syzkaller probes a kernel (Documentation/fault-injection/): for
 * each operation, the first slab or page allocation made through the
 * driver's code fails, then the second, and so on (/proc/thread-self/
 * fail-nth with failslab and fail_page_alloc limited to call chains
 * through the module's text by their stack-trace filter), until the
 * operation runs through with no failure left to inject. Each failed call
 * must fail with ENOMEM (LOOP_CTL_ADD also EINVAL, see there) and leave the device as it was: still unbound
 * after a failed LOOP_CONFIGURE, still bound and reading its data after a
 * failed reconfiguration, absent after a failed LOOP_CTL_ADD; and the next
 * call without a fault must work. A call that absorbs a failure and
 * succeeds must have done its whole job. Afterwards tests/run.sh and
 * make check look for splats and kmemleak reports.
 *
 * Operations: LOOP_CTL_ADD, LOOP_CTL_REMOVE, open, LOOP_CONFIGURE (direct
 * I/O and partition scan), LOOP_SET_FD, LOOP_SET_STATUS64, LOOP_CHANGE_FD,
 * LOOP_SET_BLOCK_SIZE, LOOP_SET_DIRECT_IO, LOOP_SET_CAPACITY, and direct
 * reads and writes. make check tries every third fault point, the quick
 * tier every seventh, the slow tier all (stride() below).
 *
 * Needs CONFIG_FAULT_INJECTION_DEBUG_FS and
 * CONFIG_FAULT_INJECTION_STACKTRACE_FILTER (the test kernel has both; on
 * the release kernel every case is a skip). FAULT_TRACE=1 logs the stack
 * of every injected failure and the outcome of its call to the kernel log.
 */
#include "common.h"

#include <stdarg.h>
#include <time.h>

#include "kselftest_harness.h"
#include "bind.h"

/* Fault points tried per operation before giving up on reaching its end. */
#define MAX_NTH 3000
#define FILE_SIZE (4 * MIB)
#define IDX 200

static const char *const fault_dirs[] = {
	"/sys/kernel/debug/failslab",
	"/sys/kernel/debug/fail_page_alloc",
};

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, s, strlen(s)) != (ssize_t)strlen(s))
		ret = -errno;
	close(fd);
	return ret;
}

/*
 * Aim failslab and fail_page_alloc at the driver: only allocations with a
 * frame of the module in their stack trace count, sleeping ones included;
 * nothing fails unless fail-nth asks. Returns false if the kernel has no
 * fault injection (or not the stack-trace filter).
 */
static bool aim_at_driver(struct __test_metadata *_metadata)
{
	unsigned long long base = 0, size = 0;
	char line[512], name[64], path[256], v[64];
	FILE *f;

	if (!path_exists("%s/require-start", fault_dirs[0]))
		return false;
	f = fopen("/proc/modules", "re");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%63s %llu %*s %*s %*s %llx", name, &size, &base) == 3 &&
		    !strcmp(name, drv_name()))
			break;
		base = 0;
	}
	fclose(f);
	if (!base)
		return false;
	for (size_t i = 0; i < sizeof(fault_dirs) / sizeof(fault_dirs[0]); i++) {
		const char *const settings[][2] = {
			{ "probability", "0" },
			{ "verbose", getenv("FAULT_TRACE") ? "2" : "0" },
			{ "ignore-gfp-wait", "N" }, { "stacktrace-depth", "32" },
		};

		for (size_t k = 0; k < sizeof(settings) / sizeof(settings[0]); k++) {
			snprintf(path, sizeof(path), "%s/%s", fault_dirs[i], settings[k][0]);
			if (write_str(path, settings[k][1]))
				return false;
		}
		if (getenv("FAULT_TRACE")) {
			snprintf(path, sizeof(path), "%s/verbose_ratelimit_burst", fault_dirs[i]);
			write_str(path, "1000000");
			write_str("/proc/sys/kernel/printk_devkmsg", "on");
		}
		snprintf(path, sizeof(path), "%s/require-start", fault_dirs[i]);
		snprintf(v, sizeof(v), "%llu", base);
		EXPECT_EQ(0, write_str(path, v));
		snprintf(path, sizeof(path), "%s/require-end", fault_dirs[i]);
		snprintf(v, sizeof(v), "%llu", base + size);
		EXPECT_EQ(0, write_str(path, v));
	}
	return true;
}

/* Back to the defaults: no stack-trace filter. */
static void disarm(void)
{
	char path[256];

	for (size_t i = 0; i < sizeof(fault_dirs) / sizeof(fault_dirs[0]); i++) {
		snprintf(path, sizeof(path), "%s/require-start", fault_dirs[i]);
		write_str(path, "0");
		snprintf(path, sizeof(path), "%s/require-end", fault_dirs[i]);
		write_str(path, "18446744073709551615");
	}
}

/*
 * The fault-injection points of this thread: fail_nth(n) makes the n-th
 * next one fail; nth_injected() says whether it did, and stops it.
 */
static int nth_fd = -1;

static void fail_nth(int n)
{
	char s[16];

	if (nth_fd < 0)
		nth_fd = open("/proc/thread-self/fail-nth", O_RDWR | O_CLOEXEC);
	snprintf(s, sizeof(s), "%d", n);
	if (pwrite(nth_fd, s, strlen(s), 0) < 0)
		perror("fail-nth");
}

static bool nth_injected(void)
{
	char s[16] = "";
	bool injected;

	if (pread(nth_fd, s, sizeof(s) - 1, 0) < 0)
		perror("fail-nth");
	injected = atoi(s) == 0;
	if (pwrite(nth_fd, "0", 1, 0) < 0)
		perror("fail-nth");
	return injected;
}

/*
 * Which fault points: every one in the slow tier; every third in make
 * check and every seventh in the quick tier, starting at a random one of
 * the first three or seven (FAULT_OFFSET=K starts at K), so that runs
 * together cover them all.
 */
static int stride(void)
{
	return tier_count(7, 3, 1);
}

static int first_nth(void)
{
	static int first;

	if (!first) {
		const char *o = getenv("FAULT_OFFSET");

		first = o ? atoi(o) : 1 + (int)((unsigned int)time(NULL) % stride());
		if (first < 1 || first > stride())
			first = 1;
		ksft_print_msg("fault points %d, %d, %d, ... (FAULT_OFFSET=%d)\n",
			       first, first + stride(), first + 2 * stride(), first);
	}
	return first;
}

/* FAULT_TRACE=1: each call and its outcome in the kernel log, after the
 * stack trace of the failure injected into it (verbose 2). */
static void trace(const char *fmt, ...)
{
	static int kmsg = -2;
	char line[256];
	va_list ap;
	int n;

	if (kmsg == -2)
		kmsg = getenv("FAULT_TRACE") ? open("/dev/kmsg", O_WRONLY | O_CLOEXEC) : -1;
	if (kmsg < 0)
		return;
	n = snprintf(line, sizeof(line), "fault_test: ");
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	if (write(kmsg, line, strlen(line)) < 0)
		kmsg = -1;
}

/*
 * run_faults_or(WHAT, ALSO, CALL, AFTER): for n = 1, 2, ...: CALL (an
 * expression giving 0 or -errno) with the n-th fault point failing; then
 * AFTER (a statement checking the state, which sees the result in `ret`
 * and whether a fault was injected in `injected`); until CALL ran with no
 * fault left to inject. Every failure must be ENOMEM, or the errno ALSO.
 */
#define run_faults(what, call, after) run_faults_or(what, -ENOMEM, call, after)
#define run_faults_or(what, also, call, after) do {					\
	int _n, _tried = 0, _failed = 0, _absorbed = 0;			\
										\
	for (_n = first_nth(); _n <= MAX_NTH; _n += stride()) {		\
		int ret;							\
		bool injected;							\
										\
		fail_nth(_n);							\
		_tried++;							\
		ret = (call);							\
		injected = nth_injected();					\
		trace("%s: fault point %d: %s, %s", what, _n,			\
		      ret ? strerror(-ret) : "success",				\
		      injected ? "injected" : "none left");			\
		if (ret) {							\
			_failed++;						\
			ASSERT_TRUE(ret == -ENOMEM || ret == (also))		\
				TH_LOG("%s with fault point %d failing: %s",	\
				       what, _n, strerror(-ret));		\
		} else if (injected) {						\
			_absorbed++;						\
		}								\
		after;								\
		if (!injected)							\
			break;							\
	}									\
	ASSERT_GE(MAX_NTH, _n) TH_LOG("%s: more than %d fault points", what, MAX_NTH); \
	ksft_print_msg("%s: %d fault points tried, %d failed the call, %d absorbed; none at %d\n", \
		       what, _tried - 1, _failed, _absorbed, _n);		\
} while (0)

static int ctl_call(int cmd, long arg)
{
	int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC), ret;

	if (ctl < 0)
		return -errno;
	ret = ioctl(ctl, cmd, arg);
	ret = ret < 0 ? -errno : ret;
	close(ctl);
	return ret;
}

/* Reads FILE_SIZE bytes of @fd at 0 and checks them against @seed. */
static bool reads_back(int fd, unsigned int seed, size_t len)
{
	static unsigned char buf[FILE_SIZE] __attribute__((aligned(4096)));

	return pread(fd, buf, len, 0) == (ssize_t)len && check(buf, len, 0, seed);
}

#define ARM() do {							\
	if (!aim_at_driver(_metadata))					\
		SKIP(return, "no fault injection with a stack-trace filter in this kernel"); \
} while (0)

TEST_F_TIMEOUT(cfg, ctl_add_and_remove, 900)
{
	ARM();
	ctl_call(LOOP_CTL_REMOVE, IDX);
	/*
	 * EINVAL as well: __add_disk() (block/genhd.c) ignores a failure of
	 * dev_set_name(), and device_add() then refuses the nameless device.
	 * loop.ko answers the same at the same fault point.
	 */
	run_faults_or("LOOP_CTL_ADD", -EINVAL, ({
			int r = ctl_call(LOOP_CTL_ADD, IDX);

			r == IDX ? 0 : r < 0 ? r : -EIO;
		}), ({
			if (ret) {
				/* Nothing of it is left: the index is free. */
				ASSERT_FALSE(path_exists("/sys/block/loop%d", IDX));
				ASSERT_EQ(IDX, ctl_call(LOOP_CTL_ADD, IDX));
			}
			ASSERT_TRUE(path_exists("/sys/block/loop%d", IDX));
			ASSERT_EQ(0, ctl_call(LOOP_CTL_REMOVE, IDX));
		}));
	ASSERT_EQ(IDX, ctl_call(LOOP_CTL_ADD, IDX));
	run_faults("LOOP_CTL_REMOVE", ctl_call(LOOP_CTL_REMOVE, IDX), ({
			if (ret)
				ASSERT_EQ(0, ctl_call(LOOP_CTL_REMOVE, IDX));
			ASSERT_FALSE(path_exists("/sys/block/loop%d", IDX));
			if (injected)
				ASSERT_EQ(IDX, ctl_call(LOOP_CTL_ADD, IDX));
		}));
	disarm();
}

TEST_F_TIMEOUT(cfg, open_and_configure, 900)
{
	const char *file;
	int ffd, s, idx;
	char dev[64];

	ARM();
	file = mkfile(_metadata, self, FILE_SIZE, 7);
	ffd = xopen(_metadata, file, O_RDWR);
	s = get_dev(_metadata, self, O_RDWR);
	idx = self->idx[s];
	snprintf(dev, sizeof(dev), "/dev/loop%d", idx);
	run_faults("open", ({
			int fd = open(dev, O_RDWR | O_CLOEXEC);

			if (fd >= 0)
				close(fd);
			fd < 0 ? -errno : 0;
		}), ({}));
	run_faults("LOOP_CONFIGURE", configure(self->fd[s], ffd,
					       LO_FLAGS_DIRECT_IO | LO_FLAGS_PARTSCAN, 0, 0, 0), ({
			if (ret) {
				/* Still unbound, and bindable. */
				ASSERT_UNBOUND(s);
				ASSERT_EQ(0, configure(self->fd[s], ffd, LO_FLAGS_DIRECT_IO |
						       LO_FLAGS_PARTSCAN, 0, 0, 0));
			}
			ASSERT_EQ(FILE_SIZE / 512, loop_sysfs_ll(idx, "size"));
			ASSERT_TRUE(reads_back(self->fd[s], 7, FILE_SIZE));
			detach(_metadata, self, s);
		}));
	run_faults("LOOP_SET_FD", set_fd(self->fd[s], ffd), ({
			if (ret) {
				ASSERT_UNBOUND(s);
				ASSERT_EQ(0, set_fd(self->fd[s], ffd));
			}
			ASSERT_TRUE(reads_back(self->fd[s], 7, FILE_SIZE));
			detach(_metadata, self, s);
		}));
	close(ffd);
	disarm();
}

TEST_F_TIMEOUT(cfg, reconfigure_bound_device, 900)
{
	const char *file, *other;
	struct loop_info64 info;
	int ffd, ofd, s, idx;

	ARM();
	file = mkfile(_metadata, self, FILE_SIZE, 7);
	other = mkfile(_metadata, self, FILE_SIZE, 7);
	ffd = xopen(_metadata, file, O_RDWR);
	ofd = xopen(_metadata, other, O_RDONLY);
	s = get_dev(_metadata, self, O_RDWR);
	idx = self->idx[s];
	ASSERT_EQ(0, configure(self->fd[s], ffd, 0, 0, 0, 0));

	/* LOOP_SET_STATUS64: a size limit and a name; a failure changes nothing. */
	run_faults("LOOP_SET_STATUS64", ({
			memset(&info, 0, sizeof(info));
			info.lo_sizelimit = FILE_SIZE / 2;
			strcpy((char *)info.lo_file_name, "fault_test");
			ioctl(self->fd[s], LOOP_SET_STATUS64, &info) ? -errno : 0;
		}), ({
			ASSERT_EQ(ret ? FILE_SIZE / 512 : FILE_SIZE / 1024,
				  loop_sysfs_ll(idx, "size"));
			ASSERT_TRUE(reads_back(self->fd[s], 7, FILE_SIZE / 2));
			memset(&info, 0, sizeof(info));
			ASSERT_EQ(0, ioctl(self->fd[s], LOOP_SET_STATUS64, &info));
			ASSERT_EQ(FILE_SIZE / 512, loop_sysfs_ll(idx, "size"));
		}));
	run_faults("LOOP_SET_BLOCK_SIZE", ioctl(self->fd[s], LOOP_SET_BLOCK_SIZE, 4096) ?
		   -errno : 0, ({
			ASSERT_EQ(ret ? 512 : 4096, loop_sysfs_ll(idx, "queue/logical_block_size"));
			ASSERT_TRUE(reads_back(self->fd[s], 7, FILE_SIZE));
			ASSERT_EQ(0, ioctl(self->fd[s], LOOP_SET_BLOCK_SIZE, 512));
		}));
	run_faults("LOOP_SET_DIRECT_IO", ioctl(self->fd[s], LOOP_SET_DIRECT_IO, 1) ?
		   -errno : 0, ({
			ASSERT_EQ(ret ? 0 : 1, loop_sysfs_ll(idx, "loop/dio"));
			ASSERT_TRUE(reads_back(self->fd[s], 7, FILE_SIZE));
			ASSERT_EQ(0, ioctl(self->fd[s], LOOP_SET_DIRECT_IO, 0));
		}));
	run_faults("LOOP_SET_CAPACITY", ioctl(self->fd[s], LOOP_SET_CAPACITY) ? -errno : 0, ({
			ASSERT_EQ(FILE_SIZE / 512, loop_sysfs_ll(idx, "size"));
			ASSERT_TRUE(reads_back(self->fd[s], 7, FILE_SIZE));
		}));
	run_faults("direct write and read", ({
			static unsigned char buf[65536] __attribute__((aligned(4096)));
			int dfd = loop_open(idx, O_RDWR | O_DIRECT), r = 0;

			if (dfd < 0) {
				r = dfd;
			} else {
				fill(buf, sizeof(buf), 65536, 7);
				if (pwrite(dfd, buf, sizeof(buf), 65536) != sizeof(buf))
					r = -errno;
				else if (pread(dfd, buf, sizeof(buf), 65536) != sizeof(buf))
					r = -errno;
				close(dfd);
			}
			r;
		}), ({
			ASSERT_TRUE(reads_back(self->fd[s], 7, FILE_SIZE));
		}));
	detach(_metadata, self, s);

	/* LOOP_CHANGE_FD of a read-only device to a file of the same size. */
	ASSERT_EQ(0, configure(self->fd[s], ffd, LO_FLAGS_READ_ONLY, 0, 0, 0));
	run_faults("LOOP_CHANGE_FD", ioctl(self->fd[s], LOOP_CHANGE_FD, ofd) ?
		   -errno : 0, ({
			char b[256];

			ASSERT_EQ(0, loop_sysfs_read(idx, "loop/backing_file", b, sizeof(b)));
			b[strcspn(b, "\n")] = 0;
			ASSERT_STREQ(ret ? file : other, b);
			ASSERT_TRUE(reads_back(self->fd[s], 7, FILE_SIZE));
			if (!ret)
				ASSERT_EQ(0, ioctl(self->fd[s], LOOP_CHANGE_FD, ffd));
		}));
	detach(_metadata, self, s);
	close(ofd);
	close(ffd);
	disarm();
}

TEST_HARNESS_MAIN
