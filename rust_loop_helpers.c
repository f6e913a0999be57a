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
#include <linux/fs.h>

#include "rust_loop_helpers.h"

static_assert(RUST_LOOP_BLK_OPEN_WRITE == (__force unsigned int)BLK_OPEN_WRITE);
static_assert(RUST_LOOP_BLK_OPEN_EXCL == (__force unsigned int)BLK_OPEN_EXCL);
static_assert(RUST_LOOP_FMODE_WRITE == (__force unsigned int)FMODE_WRITE);
static_assert(RUST_LOOP_FMODE_CAN_ODIRECT == (__force unsigned int)FMODE_CAN_ODIRECT);
static_assert(RUST_LOOP_FMODE_NOWAIT == (__force unsigned int)FMODE_NOWAIT);
static_assert(RUST_LOOP_IOCB_NOWAIT == IOCB_NOWAIT);
static_assert(RUST_LOOP_BLK_FEAT_WRITE_CACHE == (__force unsigned int)BLK_FEAT_WRITE_CACHE);
static_assert(RUST_LOOP_BLK_STS_NOTSUPP == (__force int)BLK_STS_NOTSUPP);
static_assert(RUST_LOOP_BLK_STS_RESOURCE == (__force int)BLK_STS_RESOURCE);
static_assert(RUST_LOOP_BLK_STS_IOERR == (__force int)BLK_STS_IOERR);
static_assert(RUST_LOOP_BLK_STS_AGAIN == (__force int)BLK_STS_AGAIN);

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
