// SPDX-License-Identifier: GPL-2.0
/*
 * Module lifecycle of the driver under test: it loads, appears in
 * /sys/module, holds no references while idle, unloads cleanly, and survives
 * many load/unload cycles (leaks are caught by the kmemleak scan and the
 * kernel log check that end every `make check`).
 */
#include "common.h"
#include "kselftest_harness.h"

TEST(load_appears_in_sysfs)
{
	char path[256], buf[64];

	ASSERT_EQ(0, drv_reload(NULL));
	ASSERT_TRUE(path_exists("/sys/module/%s", drv_name()));
	snprintf(path, sizeof(path), "/sys/module/%s/initstate", drv_name());
	ASSERT_EQ(0, read_file(path, buf, sizeof(buf)));
	EXPECT_STREQ("live", buf);
	/* Nothing holds the module while no device is open. */
	snprintf(path, sizeof(path), "/sys/module/%s/refcnt", drv_name());
	ASSERT_EQ(0, read_file(path, buf, sizeof(buf)));
	EXPECT_STREQ("0", buf);
}

TEST(unload_removes_sysfs)
{
	ASSERT_EQ(0, drv_reload(NULL));
	ASSERT_EQ(0, drv_unload());
	EXPECT_FALSE(path_exists("/sys/module/%s", drv_name()));
	/* A second unload finds nothing to unload. */
	EXPECT_EQ(-ENOENT, drv_unload());
}

TEST(load_twice_is_eexist)
{
	ASSERT_EQ(0, drv_reload(NULL));
	EXPECT_EQ(-EEXIST, drv_load(NULL));
	EXPECT_TRUE(path_exists("/sys/module/%s", drv_name()));
}

/*
 * Slow under KASAN and TCG (a load creates 8 disks, about 3.5 s a cycle):
 * 10 cycles, 3 in the quick tier, 200 in the slow one; own timeout.
 */
FIXTURE(cycles) {};
FIXTURE_SETUP(cycles) {}
FIXTURE_TEARDOWN(cycles) {}

TEST_F_TIMEOUT(cycles, load_unload_cycles, 1200)
{
	int n = tier_count(3, 10, 200);

	TH_LOG("%d cycles", n);
	ASSERT_EQ(0, drv_reload(NULL));
	ASSERT_EQ(0, drv_unload());
	for (int i = 0; i < n; i++) {
		ASSERT_EQ(0, drv_load(NULL)) TH_LOG("load %d", i);
		ASSERT_TRUE(path_exists("/sys/module/%s", drv_name()));
		ASSERT_EQ(0, drv_unload()) TH_LOG("unload %d", i);
		ASSERT_FALSE(path_exists("/sys/module/%s", drv_name()));
	}
}

TEST_HARNESS_MAIN
