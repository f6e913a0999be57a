// SPDX-License-Identifier: GPL-2.0

//! Declarations of the C wrappers in `rust_loop_helpers.c` (one-line calls
//! of static inline kernel functions), and the kernel macro values that
//! bindgen cannot see; `rust_loop_helpers.c` checks each value against the
//! kernel's definition at build time (`include/rust_loop_helpers.h`).

use kernel::ffi::{c_uint, c_void};

/// `BLK_OPEN_WRITE`.
pub(crate) const BLK_OPEN_WRITE: u32 = 1 << 1;
/// `BLK_OPEN_EXCL`.
pub(crate) const BLK_OPEN_EXCL: u32 = 1 << 2;
/// `FMODE_WRITE`.
pub(crate) const FMODE_WRITE: u32 = 1 << 1;
/// `FMODE_CAN_ODIRECT`.
pub(crate) const FMODE_CAN_ODIRECT: u32 = 1 << 22;
/// `IOCB_DSYNC`.
pub(crate) const IOCB_DSYNC: i32 = 0x2;
/// `__GFP_IO`.
pub(crate) const GFP_IO: u32 = 1 << 6;
/// `__GFP_FS`.
pub(crate) const GFP_FS: u32 = 1 << 7;
/// `FALLOC_FL_KEEP_SIZE`.
pub(crate) const FALLOC_FL_KEEP_SIZE: i32 = 0x01;
/// `FALLOC_FL_PUNCH_HOLE`.
pub(crate) const FALLOC_FL_PUNCH_HOLE: i32 = 0x02;
/// `FALLOC_FL_ZERO_RANGE`.
pub(crate) const FALLOC_FL_ZERO_RANGE: i32 = 0x10;
/// `REQ_FUA`.
pub(crate) const REQ_FUA: u32 = 1 << 17;
/// `REQ_NOUNMAP`.
pub(crate) const REQ_NOUNMAP: u32 = 1 << 28;
/// `BLK_FEAT_WRITE_CACHE`.
pub(crate) const BLK_FEAT_WRITE_CACHE: u32 = 1 << 0;
/// `BLK_STS_NOTSUPP`.
pub(crate) const BLK_STS_NOTSUPP: u8 = 1;
/// `BLK_STS_IOERR`.
pub(crate) const BLK_STS_IOERR: u8 = 10;

extern "C" {
    /// `*lim = queue_limits_start_update(q)`: locks `q->limits_lock`.
    pub(crate) fn rust_loop_queue_limits_start_update(q: *mut c_void, lim: *mut c_void);
    /// `queue_limits_cancel_update(q)`: unlocks `q->limits_lock`.
    pub(crate) fn rust_loop_queue_limits_cancel_update(q: *mut c_void);
    /// `blk_mq_freeze_queue(q)`.
    pub(crate) fn rust_loop_freeze_queue(q: *mut c_void) -> c_uint;
    /// `blk_mq_unfreeze_queue(q, memflags)`.
    pub(crate) fn rust_loop_unfreeze_queue(q: *mut c_void, memflags: c_uint);
    /// `kiocb_start_write(iocb)`.
    pub(crate) fn rust_loop_kiocb_start_write(iocb: *mut c_void);
    /// `kiocb_end_write(iocb)`.
    pub(crate) fn rust_loop_kiocb_end_write(iocb: *mut c_void);
    /// `memalloc_noio_save()`.
    pub(crate) fn rust_loop_memalloc_noio_save() -> c_uint;
    /// `memalloc_noio_restore(flags)`.
    pub(crate) fn rust_loop_memalloc_noio_restore(flags: c_uint);
}
