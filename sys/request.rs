// SPDX-License-Identifier: GPL-2.0

//! blk-mq requests as the driver sees them: an owned, started request that
//! must be ended exactly once, with its per-request driver data (the PDU,
//! `cmd_size` bytes behind `struct request`).

use super::{disk::DiskOps, helpers};
use core::{marker::PhantomData, ptr::NonNull};
use kernel::{
    bindings,
    ffi::{c_int, c_uint},
    prelude::*,
    sync::Arc,
    types::ForeignOwnable, //
};

/// Per-request driver data, placed in every request's PDU when the tag set
/// allocates its requests.
pub(crate) trait Cmd: Send + Sync + Sized {
    /// The initial value of a request's PDU.
    fn new() -> Self;
}

impl Cmd for () {
    fn new() -> Self {}
}

/// A block status (`blk_status_t`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Status(u8);

impl Status {
    /// `BLK_STS_OK`.
    pub(crate) const OK: Status = Status(bindings::BLK_STS_OK as u8);
    /// `BLK_STS_IOERR`.
    pub(crate) const IOERR: Status = Status(helpers::BLK_STS_IOERR);

    /// The status `errno_to_blk_status()` gives for `err`.
    pub(crate) fn from_error(err: Error) -> Status {
        // SAFETY: pure function of an integer.
        Status(unsafe { bindings::errno_to_blk_status(err.to_errno()) })
    }
}

/// The operation of a request (`req_op()`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Op {
    /// `REQ_OP_READ`.
    Read,
    /// `REQ_OP_WRITE`.
    Write,
    /// `REQ_OP_FLUSH`.
    Flush,
    /// `REQ_OP_DISCARD`.
    Discard,
    /// `REQ_OP_WRITE_ZEROES`.
    WriteZeroes,
    /// Anything else.
    Other,
}

/// A started request owned by the driver.
///
/// # Invariants
///
/// `rq` is a started request of a disk of `T`, owned by the driver: the
/// block layer does not touch it until the driver ends or completes it,
/// which consumes this value. Its PDU holds an initialized `T::Cmd`.
pub(crate) struct Request<T: DiskOps> {
    rq: NonNull<bindings::request>,
    _p: PhantomData<T>,
}

// SAFETY: a started request may be ended from any thread.
unsafe impl<T: DiskOps> Send for Request<T> {}

impl<T: DiskOps> Request<T> {
    fn raw(&self) -> *mut bindings::request {
        self.rq.as_ptr()
    }

    /// Its operation.
    pub(crate) fn op(&self) -> Op {
        // SAFETY: a valid request; `req_op()` masks `cmd_flags`.
        let flags = unsafe { (*self.raw()).cmd_flags };
        match flags & ((1 << bindings::REQ_OP_BITS) - 1) {
            bindings::req_op_REQ_OP_READ => Op::Read,
            bindings::req_op_REQ_OP_WRITE => Op::Write,
            bindings::req_op_REQ_OP_FLUSH => Op::Flush,
            bindings::req_op_REQ_OP_DISCARD => Op::Discard,
            bindings::req_op_REQ_OP_WRITE_ZEROES => Op::WriteZeroes,
            _ => Op::Other,
        }
    }

    /// The driver data of this request.
    pub(crate) fn cmd(&self) -> &T::Cmd {
        // SAFETY: the PDU holds an initialized `T::Cmd` (type invariant).
        unsafe { &*bindings::blk_mq_rq_to_pdu(self.raw()).cast::<T::Cmd>() }
    }

    /// Ends the request with `status` (`blk_mq_end_request`).
    pub(crate) fn end(self, status: Status) {
        let rq = self.raw();
        core::mem::forget(self);
        // SAFETY: an owned, started request, handed back exactly once.
        unsafe { bindings::blk_mq_end_request(rq, status.0) };
    }

    /// Completes the request through `DiskOps::complete`
    /// (`blk_mq_complete_request`), possibly on another CPU.
    pub(crate) fn complete(self) {
        let rq = self.raw();
        core::mem::forget(self);
        // SAFETY: an owned, started request; the block layer calls
        // `complete_callback`, which takes ownership back.
        unsafe { bindings::blk_mq_complete_request(rq) };
    }
}

impl<T: DiskOps> Drop for Request<T> {
    /// A request the driver forgot to end fails rather than hangs.
    fn drop(&mut self) {
        kernel::pr_warn_once!("request dropped without being ended\n");
        // SAFETY: an owned, started request, handed back exactly once.
        unsafe { bindings::blk_mq_end_request(self.raw(), helpers::BLK_STS_IOERR) };
    }
}

/// `mq_ops->queue_rq`.
///
/// # Safety
///
/// Called by blk-mq for a request of a disk of `T` whose `queuedata` holds
/// the disk's `Arc<T>`.
pub(super) unsafe extern "C" fn queue_rq_callback<T: DiskOps>(
    hctx: *mut bindings::blk_mq_hw_ctx,
    bd: *const bindings::blk_mq_queue_data,
) -> bindings::blk_status_t {
    // SAFETY: blk-mq passes a valid `bd` whose request it now hands to us.
    let (rq, last) = unsafe { ((*bd).rq, (*bd).last) };
    // SAFETY: `queuedata` holds the disk's `Arc<T>`, which outlives every
    // request (the disk is deleted, draining its queue, before release).
    let this = unsafe { Arc::<T>::borrow((*(*hctx).queue).queuedata) };
    // SAFETY: a valid request owned by the driver from now on.
    unsafe { bindings::blk_mq_start_request(rq) };
    // INVARIANT: started, owned, with an initialized PDU (`init_request`).
    let rq = Request {
        // SAFETY: blk-mq never passes a NULL request.
        rq: unsafe { NonNull::new_unchecked(rq) },
        _p: PhantomData,
    };
    this.queue_rq(rq, last);
    bindings::BLK_STS_OK as bindings::blk_status_t
}

/// `mq_ops->complete`.
///
/// # Safety
///
/// Called by blk-mq for a request passed to `blk_mq_complete_request` by
/// [`Request::complete`].
pub(super) unsafe extern "C" fn complete_callback<T: DiskOps>(rq: *mut bindings::request) {
    // INVARIANT: `Request::complete` gave up ownership for this call.
    T::complete(Request {
        // SAFETY: blk-mq never passes a NULL request.
        rq: unsafe { NonNull::new_unchecked(rq) },
        _p: PhantomData,
    });
}

/// `mq_ops->init_request`: writes a fresh `T::Cmd` into the PDU.
///
/// # Safety
///
/// Called by blk-mq for a request allocated with `cmd_size` of `T::Cmd`.
pub(super) unsafe extern "C" fn init_request_callback<T: DiskOps>(
    _set: *mut bindings::blk_mq_tag_set,
    rq: *mut bindings::request,
    _hctx_idx: c_uint,
    _numa_node: c_int,
) -> c_int {
    // SAFETY: the PDU is `size_of::<T::Cmd>()` bytes, suitably aligned
    // (blk-mq aligns the PDU for any kernel type).
    unsafe { bindings::blk_mq_rq_to_pdu(rq).cast::<T::Cmd>().write(T::Cmd::new()) };
    0
}
