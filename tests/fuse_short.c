// SPDX-License-Identifier: GPL-2.0
/*
 * fuse_short: a FUSE file system of one file, /img, that stands for a
 * file on another file system (BACKING) and moves at most MAX bytes per
 * read or write call, as FUSE servers may. The file is opened with
 * direct_io, so every read and write of it reaches this server and its
 * short counts reach the caller (a loop driver) as they are, not
 * smoothed by the page cache. tests/fuse_test.sh uses it as the backing
 * file of a loop device.
 *
 *   fuse_short BACKING MAX MOUNTPOINT
 *
 * It runs in the foreground, single-threaded, until the mount point is
 * unmounted.
 */
#define FUSE_USE_VERSION 31
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *backing;
static size_t max_io;
static int fd = -1;

static int fs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	if (strcmp(path, "/") == 0) {
		memset(st, 0, sizeof(*st));
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		return 0;
	}
	if (strcmp(path, "/img") != 0)
		return -ENOENT;
	if (fstat(fd, st))
		return -errno;
	return 0;
}

static int fs_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
		      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	if (strcmp(path, "/") != 0)
		return -ENOENT;
	fill(buf, ".", NULL, 0, 0);
	fill(buf, "..", NULL, 0, 0);
	fill(buf, "img", NULL, 0, 0);
	return 0;
}

static int fs_open(const char *path, struct fuse_file_info *fi)
{
	if (strcmp(path, "/img") != 0)
		return -ENOENT;
	fi->direct_io = 1;
	return 0;
}

static int fs_read(const char *path, char *buf, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	ssize_t n = pread(fd, buf, size < max_io ? size : max_io, off);

	return n < 0 ? -errno : (int)n;
}

static int fs_write(const char *path, const char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	ssize_t n = pwrite(fd, buf, size < max_io ? size : max_io, off);

	return n < 0 ? -errno : (int)n;
}

static int fs_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	return fsync(fd) ? -errno : 0;
}

static const struct fuse_operations ops = {
	.getattr = fs_getattr,
	.readdir = fs_readdir,
	.open = fs_open,
	.read = fs_read,
	.write = fs_write,
	.fsync = fs_fsync,
};

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s BACKING MAX MOUNTPOINT\n", argv[0]);
		return 2;
	}
	backing = argv[1];
	max_io = strtoul(argv[2], NULL, 0);
	fd = open(backing, O_RDWR);
	if (fd < 0 || max_io == 0) {
		perror(backing);
		return 1;
	}
	char *fargv[] = { argv[0], "-f", "-s", "-o", "default_permissions", argv[3], NULL };

	return fuse_main(6, fargv, &ops, NULL);
}
