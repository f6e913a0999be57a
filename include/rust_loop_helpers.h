/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rust_loop: C wrappers for the static inline kernel functions the Rust
 * side needs and no binding reaches (rust/helpers/ does not cover them).
 * Each is a one-line call of the inline it is named after; the Rust
 * declarations are in sys/helpers.rs. Pointers are void * so the Rust
 * extern block needs no non-FFI-safe struct types.
 *
 * It also lists the values of the kernel macros that bindgen cannot see
 * (casts with __force) and that the Rust side defines by hand; the helper
 * object checks them at build time against the kernel's own definitions.
 */
#ifndef RUST_LOOP_HELPERS_H
#define RUST_LOOP_HELPERS_H

#define RUST_LOOP_BLK_OPEN_WRITE	(1U << 1)
#define RUST_LOOP_BLK_OPEN_EXCL		(1U << 2)
#define RUST_LOOP_FMODE_WRITE		(1U << 1)
#define RUST_LOOP_FMODE_CAN_ODIRECT	(1U << 22)
#define RUST_LOOP_IOCB_DSYNC		0x00000002
#define RUST_LOOP_GFP_IO		(1U << 6)
#define RUST_LOOP_GFP_FS		(1U << 7)
#define RUST_LOOP_FALLOC_FL_KEEP_SIZE	0x01
#define RUST_LOOP_FALLOC_FL_PUNCH_HOLE	0x02
#define RUST_LOOP_FALLOC_FL_ZERO_RANGE	0x10
#define RUST_LOOP_KSTATFS_SIZE		120
#define RUST_LOOP_KSTATFS_BSIZE_OFFSET	8
#define RUST_LOOP_REQ_FUA		(1U << 17)
#define RUST_LOOP_REQ_NOUNMAP		(1U << 28)
#define RUST_LOOP_BLK_FEAT_WRITE_CACHE	(1U << 0)
#define RUST_LOOP_BLK_STS_NOTSUPP	1
#define RUST_LOOP_BLK_STS_IOERR		10

struct request_queue;
struct queue_limits;
struct kiocb;

#include <linux/types.h>

void rust_loop_queue_limits_start_update(struct request_queue *q,
					 struct queue_limits *lim);
void rust_loop_queue_limits_cancel_update(struct request_queue *q);
unsigned int rust_loop_freeze_queue(struct request_queue *q);
void rust_loop_unfreeze_queue(struct request_queue *q, unsigned int memflags);
void rust_loop_kiocb_start_write(struct kiocb *iocb);
void rust_loop_kiocb_end_write(struct kiocb *iocb);
unsigned int rust_loop_memalloc_noio_save(void);
void rust_loop_memalloc_noio_restore(unsigned int flags);

#endif /* RUST_LOOP_HELPERS_H */
