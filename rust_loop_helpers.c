// SPDX-License-Identifier: GPL-2.0
/*
 * rust_loop: one-line wrappers of static inline kernel functions for the
 * Rust side (see include/rust_loop_helpers.h), in the manner of the
 * kernel's rust/helpers/, and build-time checks of the macro values that
 * the Rust side mirrors.
 */
#include <linux/blk-mq.h>
#include <linux/blkdev.h>
#include <linux/build_bug.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <linux/sched/mm.h>
#include <linux/statfs.h>

#include "rust_loop_helpers.h"

static_assert(RUST_LOOP_BLK_OPEN_WRITE == (__force unsigned int)BLK_OPEN_WRITE);
static_assert(RUST_LOOP_BLK_OPEN_EXCL == (__force unsigned int)BLK_OPEN_EXCL);
static_assert(RUST_LOOP_FMODE_WRITE == (__force unsigned int)FMODE_WRITE);
static_assert(RUST_LOOP_FMODE_CAN_ODIRECT == (__force unsigned int)FMODE_CAN_ODIRECT);
static_assert(RUST_LOOP_IOCB_DSYNC == IOCB_DSYNC);
static_assert(RUST_LOOP_GFP_IO == (__force unsigned int)__GFP_IO);
static_assert(RUST_LOOP_GFP_FS == (__force unsigned int)__GFP_FS);
static_assert(RUST_LOOP_FALLOC_FL_KEEP_SIZE == FALLOC_FL_KEEP_SIZE);
static_assert(RUST_LOOP_FALLOC_FL_PUNCH_HOLE == FALLOC_FL_PUNCH_HOLE);
static_assert(RUST_LOOP_FALLOC_FL_ZERO_RANGE == FALLOC_FL_ZERO_RANGE);
static_assert(RUST_LOOP_KSTATFS_SIZE == sizeof(struct kstatfs));
static_assert(RUST_LOOP_KSTATFS_BSIZE_OFFSET == offsetof(struct kstatfs, f_bsize));
static_assert(RUST_LOOP_REQ_FUA == (__force unsigned int)REQ_FUA);
static_assert(RUST_LOOP_REQ_NOUNMAP == (__force unsigned int)REQ_NOUNMAP);
static_assert(RUST_LOOP_BLK_FEAT_WRITE_CACHE == (__force unsigned int)BLK_FEAT_WRITE_CACHE);
static_assert(RUST_LOOP_BLK_STS_NOTSUPP == (__force int)BLK_STS_NOTSUPP);
static_assert(RUST_LOOP_BLK_STS_IOERR == (__force int)BLK_STS_IOERR);

void rust_loop_queue_limits_start_update(struct request_queue *q,
					 struct queue_limits *lim)
{
	*lim = queue_limits_start_update(q);
}

void rust_loop_queue_limits_cancel_update(struct request_queue *q)
{
	queue_limits_cancel_update(q);
}

unsigned int rust_loop_freeze_queue(struct request_queue *q)
{
	return blk_mq_freeze_queue(q);
}

void rust_loop_unfreeze_queue(struct request_queue *q, unsigned int memflags)
{
	blk_mq_unfreeze_queue(q, memflags);
}

void rust_loop_kiocb_start_write(struct kiocb *iocb)
{
	kiocb_start_write(iocb);
}

void rust_loop_kiocb_end_write(struct kiocb *iocb)
{
	kiocb_end_write(iocb);
}

unsigned int rust_loop_memalloc_noio_save(void)
{
	return memalloc_noio_save();
}

void rust_loop_memalloc_noio_restore(unsigned int flags)
{
	memalloc_noio_restore(flags);
}
