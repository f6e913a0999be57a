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
/// `FMODE_NOWAIT`.
pub(crate) const FMODE_NOWAIT: u32 = 1 << 27;
/// `IOCB_NOWAIT`.
pub(crate) const IOCB_NOWAIT: i32 = 0x8;
/// `BLK_FEAT_WRITE_CACHE`.
pub(crate) const BLK_FEAT_WRITE_CACHE: u32 = 1 << 0;
/// `BLK_STS_NOTSUPP`.
pub(crate) const BLK_STS_NOTSUPP: u8 = 1;
/// `BLK_STS_RESOURCE`.
pub(crate) const BLK_STS_RESOURCE: u8 = 9;
/// `BLK_STS_IOERR`.
pub(crate) const BLK_STS_IOERR: u8 = 10;
/// `BLK_STS_AGAIN`.
pub(crate) const BLK_STS_AGAIN: u8 = 12;

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
}
