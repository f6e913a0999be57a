// SPDX-License-Identifier: GPL-2.0
/*
 * Prints the loop driver's user API as the kernel's headers define it
 * (<linux/loop.h>, <linux/fs.h>), one NAME=VALUE line each: the one
 * source of the numbers for the shell, Perl and Python parts of the tests.
 * tests/Makefile runs it into $(OUT)/loop_uapi.sh, which tests/lib.sh
 * sources and tests/loop_uapi.py reads. Not a test.
 */
#include <linux/fs.h>
#include <linux/loop.h>
#include <stddef.h>
#include <stdio.h>

#define HEX(x) printf(#x "=%#lx\n", (unsigned long)(x))
#define NUM(name, x) printf(name "=%lu\n", (unsigned long)(x))

int main(void)
{
	HEX(LOOP_SET_FD);
	HEX(LOOP_CLR_FD);
	HEX(LOOP_SET_STATUS);
	HEX(LOOP_GET_STATUS);
	HEX(LOOP_SET_STATUS64);
	HEX(LOOP_GET_STATUS64);
	HEX(LOOP_CHANGE_FD);
	HEX(LOOP_SET_CAPACITY);
	HEX(LOOP_SET_DIRECT_IO);
	HEX(LOOP_SET_BLOCK_SIZE);
	HEX(LOOP_CONFIGURE);
	HEX(LOOP_CTL_ADD);
	HEX(LOOP_CTL_REMOVE);
	HEX(LOOP_CTL_GET_FREE);
	HEX(BLKRRPART);
	HEX(BLKSSZGET);
	HEX(BLKZEROOUT);
	NUM("LO_FLAGS_READ_ONLY", LO_FLAGS_READ_ONLY);
	NUM("LO_FLAGS_AUTOCLEAR", LO_FLAGS_AUTOCLEAR);
	NUM("LO_FLAGS_PARTSCAN", LO_FLAGS_PARTSCAN);
	NUM("LO_FLAGS_DIRECT_IO", LO_FLAGS_DIRECT_IO);
	NUM("INFO_SIZE", sizeof(struct loop_info));
	NUM("INFO_OFF_LO_OFFSET", offsetof(struct loop_info, lo_offset));
	NUM("INFO_OFF_LO_FLAGS", offsetof(struct loop_info, lo_flags));
	NUM("INFO_OFF_LO_NAME", offsetof(struct loop_info, lo_name));
	NUM("INFO64_SIZE", sizeof(struct loop_info64));
	NUM("INFO64_OFF_LO_OFFSET", offsetof(struct loop_info64, lo_offset));
	NUM("INFO64_OFF_LO_SIZELIMIT", offsetof(struct loop_info64, lo_sizelimit));
	NUM("INFO64_OFF_LO_FLAGS", offsetof(struct loop_info64, lo_flags));
	NUM("CONFIG_SIZE", sizeof(struct loop_config));
	NUM("CONFIG_OFF_INFO", offsetof(struct loop_config, info));
	return 0;
}
