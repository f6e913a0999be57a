// SPDX-License-Identifier: GPL-2.0

//! blk-mq requests as the driver sees them, and the zero-copy path from a
//! request to its backing file.
//!
//! A [`Request`] is a started request owned by the driver: it must be ended
//! exactly once ([`Request::end`]), or handed on, to the backing file
//! ([`Request::read_write`]), to a workqueue ([`super::worker`]), back to
//! the block layer for the remainder ([`Request::advance`]).
//!
//! [`Request::read_write`] does what `loop.c`'s `lo_rw_aio()` does: the
//! request's own bio_vecs become an `ITER_BVEC` iov_iter (the first bio's
//! array in place when the request has one bio; a copy of the bio_vec
//! *descriptors* otherwise, never of the data), handed to the file's
//! `read_iter`/`write_iter` through a kiocb in the request's PDU, with
//! `IOCB_DIRECT` for direct I/O. However the file answers (at once, or later through
//! `ki_complete`), the result reaches [`DiskOps::complete`] through
//! `blk_mq_complete_request`.

use super::{
    disk::{DiskOps, Queue},
    file::BackingFile,
    helpers,
    worker::{work_callback, Charge},
};
use core::{
    cell::UnsafeCell,
    marker::PhantomData,
    mem::{offset_of, MaybeUninit},
    ptr::{self, NonNull}, //
};
use kernel::{
    bindings,
    ffi::{c_int, c_long, c_uint, c_ulong},
    prelude::*,
    sync::{
        atomic::{Acquire, Atomic, Full, Relaxed, Release},
        barrier::smp_mb,
        Arc,
    },
    types::{ForeignOwnable, Opaque},
};

/// A block status (`blk_status_t`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Status(u8);

impl Status {
    /// `BLK_STS_OK`.
    pub(crate) const OK: Status = Status(bindings::BLK_STS_OK as u8);
    /// `BLK_STS_IOERR`.
    pub(crate) const IOERR: Status = Status(helpers::BLK_STS_IOERR);
    /// `BLK_STS_NOTSUPP`.
    pub(crate) const NOTSUPP: Status = Status(helpers::BLK_STS_NOTSUPP);

    /// The status `errno_to_blk_status()` gives for a negative errno.
    pub(crate) fn from_errno(errno: i32) -> Status {
        // SAFETY: a pure function of an integer.
        Status(unsafe { bindings::errno_to_blk_status(errno) })
    }
}

/// The operation of a request (`req_op()`): a loop device's queue sees
/// only these; `queue_rq` fails anything else before the driver sees it.
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
}

impl Op {
    /// `op_is_write()`: the operation changes the data on the device.
    pub(crate) fn is_write(self) -> bool {
        matches!(self, Op::Write | Op::Discard | Op::WriteZeroes)
    }
}

/// Where the reads and writes of a disk go: implemented by its data-path
/// state ([`DiskOps::Io`]).
pub(crate) trait RwTarget {
    /// The backing file and the byte offset of the disk's sector 0 in it,
    /// or `None` while there is none.
    fn target(&self) -> Option<(&BackingFile, u64)>;
}

/// How [`Request::read_write`] performs the I/O.
#[derive(Clone, Copy, Default)]
pub(crate) struct RwFlags {
    /// `IOCB_DIRECT`, completing asynchronously through `ki_complete`.
    pub(crate) direct: bool,
}

const PDU_WRITE: u32 = 1 << 0;

/// bio_vec descriptors a request keeps allocated for its next multi-bio
/// submission (256 bytes): a larger copy (up to `max_segments`, 128 by
/// default: 2 KiB) is freed when its request completes, as `loop.c` frees
/// every copy, so an idle device holds at most this per request.
const KEEP_BVECS: usize = 16;

/// What the PDU of every request holds: the state of its file I/O.
///
/// # Invariants
///
/// `work` is initialized (by `init_request`) with `work_callback::<T>`.
/// The other cells are used only by the request's current owner, or, while
/// a `read_write` is in flight, by the two parties of its `refs` count.
#[repr(C)]
pub(super) struct Pdu<T: DiskOps> {
    iocb: Opaque<bindings::kiocb>,
    pub(super) work: Opaque<bindings::work_struct>,
    /// The submitter and `ki_complete` each drop one; the last finishes.
    refs: Atomic<u32>,
    ret: Atomic<i64>,
    flags: Atomic<u32>,
    /// The bio_vec descriptors of a multi-bio request, while in flight.
    bvecs: UnsafeCell<KVec<bindings::bio_vec>>,
    /// The cgroups of a deferred request, from
    /// [`RequestWorker::queue`](super::worker::RequestWorker::queue)
    /// to the worker, which takes them ([`Charge`]).
    pub(super) charge: UnsafeCell<Charge>,
    /// The next request of a worker's list
    /// ([`RequestWorker`](super::worker::RequestWorker)): the address of
    /// its PDU, 0 ends the list; while this one is on it.
    pub(super) next: Atomic<usize>,
    _p: PhantomData<T>,
}

/// A started request owned by the driver.
///
/// # Invariants
///
/// `rq` is a started request of a disk of `T`, owned by the driver: the
/// block layer does not touch it until the driver ends, completes or
/// requeues it, which consumes this value. Its PDU holds an initialized
/// `Pdu<T>`. Its operation is one of [`Op`]'s. While it exists, the
/// request holds the queue's usage counter, so the queue cannot be
/// frozen.
pub(crate) struct Request<T: DiskOps> {
    rq: NonNull<bindings::request>,
    _p: PhantomData<T>,
}

// SAFETY: a started request may be handed to and ended on any thread.
unsafe impl<T: DiskOps> Send for Request<T> {}

impl<T: DiskOps> Request<T> {
    /// # Safety
    ///
    /// `rq` satisfies the type invariants and its ownership is transferred.
    pub(super) unsafe fn from_raw(rq: *mut bindings::request) -> Self {
        // INVARIANT: by the caller's guarantee.
        Request {
            // SAFETY: blk-mq never passes NULL requests.
            rq: unsafe { NonNull::new_unchecked(rq) },
            _p: PhantomData,
        }
    }

    pub(super) fn raw(&self) -> *mut bindings::request {
        self.rq.as_ptr()
    }

    pub(super) fn pdu(&self) -> &Pdu<T> {
        // SAFETY: the PDU holds an initialized `Pdu<T>` (type invariant).
        unsafe { &*bindings::blk_mq_rq_to_pdu(self.raw()).cast::<Pdu<T>>() }
    }

    /// The driver state of the request's disk.
    pub(crate) fn driver(&self) -> &T {
        // SAFETY: `queuedata` holds the disk's `Arc<T>`, which outlives
        // every request of the disk (deleting the disk drains the queue).
        let this = unsafe { Arc::<T>::borrow((*(*self.raw()).q).queuedata) };
        // SAFETY: the `Arc` is alive at least as long as `self`.
        unsafe { &*ptr::from_ref::<T>(&this) }
    }

    /// The request's queue.
    pub(crate) fn queue(&self) -> &Queue {
        // SAFETY: a request's queue outlives it.
        unsafe { &*(*self.raw()).q.cast::<Queue>() }
    }

    /// The data-path state of the disk ([`super::disk::Disk::freeze_io`]);
    /// `None` while the disk is not bound to one
    /// ([`super::disk::Disk::bind_io`]).
    pub(crate) fn io(&self) -> Option<&T::Io> {
        // Orders this request's start (`blk_mq_start_request`, before the
        // request became a `Request`) before the load of the disk's
        // binding; pairs with the barrier in `Disk::release_io`, which
        // does not freeze the queue.
        smp_mb(Full);
        // SAFETY: the request is of this disk, started before the barrier
        // above (type invariant), and the reference lives no longer than
        // `&self`.
        unsafe { T::disk(self.driver()).io_unchecked() }
    }

    /// Its operation.
    pub(crate) fn op(&self) -> Op {
        // SAFETY: a valid request. By the type invariant its operation is
        // one of `Op`'s: the fallback is never taken.
        unsafe { Self::decode_op(self.raw()) }.unwrap_or(Op::Read)
    }

    /// The operation of `rq`, if it is one of [`Op`]'s.
    ///
    /// # Safety
    ///
    /// `rq` is a valid request.
    unsafe fn decode_op(rq: *const bindings::request) -> Option<Op> {
        // SAFETY: valid by the caller's guarantee; `req_op()` masks
        // `cmd_flags`.
        let flags = unsafe { (*rq).cmd_flags };
        match flags & ((1 << bindings::REQ_OP_BITS) - 1) {
            bindings::req_op_REQ_OP_READ => Some(Op::Read),
            bindings::req_op_REQ_OP_WRITE => Some(Op::Write),
            bindings::req_op_REQ_OP_FLUSH => Some(Op::Flush),
            bindings::req_op_REQ_OP_DISCARD => Some(Op::Discard),
            bindings::req_op_REQ_OP_WRITE_ZEROES => Some(Op::WriteZeroes),
            _ => None,
        }
    }

    fn cmd_flags(&self) -> u32 {
        // SAFETY: a valid request.
        unsafe { (*self.raw()).cmd_flags }
    }

    /// Clears `REQ_NOWAIT`, for a request in a context that may block, as
    /// `loop_handle_cmd()` does.
    pub(crate) fn clear_nowait(&mut self) {
        let nowait = 1u32 << bindings::req_flag_bits___REQ_NOWAIT;
        // SAFETY: an owned request (type invariant): its flags are the
        // driver's to change until it hands the request back.
        unsafe { (*self.raw()).cmd_flags &= !nowait };
    }

    /// `REQ_NOUNMAP` is set.
    pub(crate) fn nounmap(&self) -> bool {
        self.cmd_flags() & helpers::REQ_NOUNMAP != 0
    }

    /// Byte position on the device (`blk_rq_pos() << 9`).
    pub(crate) fn pos(&self) -> u64 {
        // SAFETY: a valid request.
        unsafe { (*self.raw()).__sector << 9 }
    }

    /// Bytes left in the request (`blk_rq_bytes()`).
    pub(crate) fn bytes(&self) -> u32 {
        // SAFETY: a valid request.
        unsafe { (*self.raw()).__data_len }
    }

    /// Ends the request with `status` (`blk_mq_end_request`).
    pub(crate) fn end(self, status: Status) {
        let rq = self.raw();
        core::mem::forget(self);
        // SAFETY: an owned, started request, handed back exactly once.
        unsafe { bindings::blk_mq_end_request(rq, status.0) };
    }

    /// Completes the first `bytes` bytes and requeues the rest
    /// (`blk_update_request` + `blk_mq_requeue_request`), as `loop.c` does
    /// after a short read.
    ///
    /// `blk_update_request` moves the data by `bytes` but the sector by
    /// `bytes >> 9`, so only whole logical blocks may be completed: the
    /// remainder would otherwise be retried at a position that does not
    /// match its data. `bytes` is rounded down to the logical block size;
    /// when that leaves nothing, the request is not advanced and is
    /// returned.
    pub(crate) fn advance(self, bytes: u32) -> Result<(), Self> {
        let bytes = bytes & !(self.queue().logical_block_size() - 1);
        if bytes == 0 || bytes >= self.bytes() {
            return Err(self);
        }
        let rq = self.raw();
        core::mem::forget(self);
        // SAFETY: an owned, started request with more than `bytes` bytes
        // left; requeueing hands it back to the block layer.
        unsafe {
            bindings::blk_update_request(rq, bindings::BLK_STS_OK as u8, bytes);
            bindings::blk_mq_requeue_request(rq, true);
        }
        Ok(())
    }

    /// Zero-fills every bio of the request (after a read found nothing).
    pub(crate) fn zero_fill(&self) {
        // SAFETY: an owned request; its bios are valid and ours to fill.
        unsafe {
            let mut bio = (*self.raw()).bio;
            while !bio.is_null() {
                bindings::zero_fill_bio(bio);
                bio = (*bio).bi_next;
            }
        }
    }

    /// The result of the last [`Self::read_write`], in
    /// [`DiskOps::complete`]: bytes transferred, or a negative errno.
    pub(crate) fn rw_result(&self) -> i64 {
        self.pdu().ret.load(Acquire)
    }

    /// Calls `f` with each bio_vec of the request, as `rq_for_each_bvec`
    /// does (multi-page bvecs, starting mid-bvec after a split).
    fn for_each_bvec(&self, mut f: impl FnMut(bindings::bio_vec)) {
        // SAFETY: an owned request: its bio chain and bvec arrays are valid
        // and not changed while we own it.
        unsafe {
            let mut bio = (*self.raw()).bio;
            while !bio.is_null() {
                let vecs = (*bio).bi_io_vec;
                let mut it = (*bio).bi_iter;
                while it.bi_size > 0 {
                    let bv = &*vecs.add(it.bi_idx as usize);
                    let len = (bv.bv_len - it.bi_offset).min(it.bi_size);
                    f(bindings::bio_vec {
                        bv_page: bv.bv_page,
                        bv_len: len,
                        bv_offset: bv.bv_offset + it.bi_offset,
                    });
                    let done = it.bi_offset + len;
                    if done == bv.bv_len {
                        it.bi_idx += 1;
                        it.bi_offset = 0;
                    } else {
                        it.bi_offset = done;
                    }
                    it.bi_size -= len;
                }
                bio = (*bio).bi_next;
            }
        }
    }

    /// Reads (`write == false`) or writes the request's data from or to
    /// the disk's backing file ([`RwTarget`]), straight from and into the
    /// request's pages. The outcome arrives at [`DiskOps::complete`] (see
    /// [`Self::rw_result`]).
    ///
    /// Gives the request back when the I/O cannot start: no backing file,
    /// or no memory for the bio_vec array. May block (memory, the backing
    /// file system's freeze protection and locks): call it only where
    /// blocking is allowed, never from `queue_rq`. The caller must not
    /// touch the disk's driver state after a successful call: the request
    /// may be over already.
    pub(crate) fn read_write(self, write: bool, flags: RwFlags) -> Result<(), Self> {
        let Some((file, offset)) = self.io().and_then(|io| io.target()) else {
            return Err(self);
        };
        let file: *const BackingFile = file;
        // SAFETY: the data-path state, and the file in it, cannot change
        // while this request is in flight (the queue cannot be frozen, and
        // a bound state is not rebound without freezing it), and
        // the request stays in flight until `ki_complete` or the end of
        // this call, whichever is last; the raw pointer only detaches the
        // borrow from `self`, which is moved below.
        let file = unsafe { &*file };
        let pos = self.pos() + offset;
        // No memory reclaim may recurse into this device from here: the
        // allocations below and the file system's use GFP_NOIO.
        let noio = NoIo::enter();
        let Ok(bvecs) = self.bvec_array() else {
            return Err(self);
        };
        self.prepare_kiocb(file, pos, write, flags.direct);
        // SAFETY: the kiocb was just set up for this request and `file`;
        // `bvecs` describes the request's pages, valid until the I/O
        // completes (the request's own bios, or the PDU's array, freed
        // only by `finish_ref` once the I/O is done).
        let ret = unsafe { self.submit_kiocb(file, write, &bvecs) };
        drop(noio);

        // From here on the request may already be completed by
        // `ki_complete` and must only be touched through `raw`.
        let raw = self.raw();
        core::mem::forget(self);
        // SAFETY: we hold one of the two references of this submission;
        // this is the worker's task.
        unsafe { Self::finish_ref(raw, Completion::InTask) };
        if ret != -(bindings::EIOCBQUEUED as isize) {
            // SAFETY: synchronous completion: `ki_complete` is not called;
            // we drop the second reference, in the worker's task.
            unsafe { Self::set_result(raw, ret as i64, Completion::InTask) };
        }
        Ok(())
    }

    /// The request's bio_vecs as one array, for an `ITER_BVEC` iov_iter:
    /// the first bio's own array in place when the request has one bio, a
    /// copy of the bio_vec descriptors in the PDU otherwise (`ENOMEM` if
    /// it cannot grow), never of the data.
    fn bvec_array(&self) -> Result<BvecArray> {
        let pdu = self.pdu();
        let rq = self.raw();
        let mut nr: usize = 0;
        let mut covered: u32 = 0;
        self.for_each_bvec(|bv| {
            nr += 1;
            covered += bv.bv_len;
        });
        // SAFETY: an owned request with a valid bio chain.
        let single = unsafe { (*rq).bio == (*rq).biotail };
        let (bvec, offset) = if single {
            // SAFETY: the first bio's iterator indexes its bvec array; the
            // iov_iter starts at the same offset into that bvec.
            unsafe {
                let bio = (*rq).bio;
                let it = (*bio).bi_iter;
                (
                    (*bio).bi_io_vec.add(it.bi_idx as usize),
                    it.bi_offset as usize,
                )
            }
        } else {
            // SAFETY: we own the request and, with it, the PDU's bvec
            // cell; no I/O of it is in flight.
            let bvecs = unsafe { &mut *pdu.bvecs.get() };
            bvecs.clear();
            bvecs.reserve(nr, GFP_KERNEL)?;
            self.for_each_bvec(|bv| {
                // Cannot fail: `nr` slots are reserved.
                let _ = bvecs.push(bv, GFP_KERNEL);
            });
            (bvecs.as_mut_ptr(), 0)
        };
        Ok(BvecArray {
            bvec,
            nr,
            bytes: covered as usize,
            offset,
        })
    }

    /// Sets up the PDU's kiocb for a read or write of `file` at `pos`, as
    /// `lo_rw_aio()` does, takes the write's freeze protection (may
    /// block), and arms the submission's two references (the submitter's
    /// and `ki_complete`'s).
    fn prepare_kiocb(&self, file: &BackingFile, pos: u64, write: bool, direct: bool) {
        let pdu = self.pdu();
        let rq = self.raw();
        let iocb = pdu.iocb.get();
        let mut ki_flags = 0;
        if direct {
            ki_flags |= bindings::IOCB_DIRECT as c_int;
        }
        // SAFETY: the kiocb is ours until the I/O completes; zeroed, then
        // set up as `lo_rw_aio()` does.
        unsafe {
            iocb.write(pin_init::zeroed());
            (*iocb).ki_filp = file.as_ptr();
            (*iocb).ki_pos = pos as i64;
            // req_get_ioprio()
            let bio = (*rq).bio;
            (*iocb).ki_ioprio = if bio.is_null() { 0 } else { (*bio).bi_ioprio };
            (*iocb).ki_flags = ki_flags;
            if direct {
                (*iocb).ki_complete = Some(ki_complete_callback::<T>);
            }
        }
        if write {
            // SAFETY: `iocb` has its file set; may block.
            unsafe { helpers::rust_loop_kiocb_start_write(iocb.cast()) };
        }
        pdu.flags.store(if write { PDU_WRITE } else { 0 }, Relaxed);
        pdu.ret.store(0, Relaxed);
        pdu.refs.store(2, Release);
    }

    /// Hands the PDU's kiocb and an `ITER_BVEC` iov_iter over `bvecs` to
    /// `file`'s `write_iter` (or `read_iter`); returns what it returned
    /// (`-EIOCBQUEUED` when `ki_complete` will follow), or `-EINVAL`
    /// without one.
    ///
    /// # Safety
    ///
    /// The kiocb was set up by [`Self::prepare_kiocb`] for this request and
    /// `file`; `bvecs` describes the request's pages and stays valid until
    /// the I/O completes.
    unsafe fn submit_kiocb(&self, file: &BackingFile, write: bool, bvecs: &BvecArray) -> isize {
        let iocb = self.pdu().iocb.get();
        let mut iter = MaybeUninit::<bindings::iov_iter>::uninit();
        let dir = if write {
            bindings::ITER_SOURCE
        } else {
            bindings::ITER_DEST
        };
        // SAFETY: `bvecs` as the caller guarantees; the iov_iter is
        // initialized by `iov_iter_bvec` before use; `f_op` of the open
        // file is valid and static (`BackingFile`'s invariant); the kiocb
        // as the caller guarantees.
        unsafe {
            bindings::iov_iter_bvec(
                iter.as_mut_ptr(),
                dir,
                bvecs.bvec,
                bvecs.nr as c_ulong,
                bvecs.bytes,
            );
            (*iter.as_mut_ptr()).iov_offset = bvecs.offset;
            let f_op = &*(*file.as_ptr()).f_op;
            let op = if write {
                f_op.write_iter
            } else {
                f_op.read_iter
            };
            match op {
                Some(op) => op(iocb, iter.as_mut_ptr()),
                None => -(bindings::EINVAL as isize),
            }
        }
    }

    /// Records the result of a submission and drops a reference.
    ///
    /// # Safety
    ///
    /// `rq` is a request with a submission in flight whose second reference
    /// the caller holds; `how` as for [`Self::finish_ref`].
    unsafe fn set_result(rq: *mut bindings::request, ret: i64, how: Completion) {
        // SAFETY: the PDU of an in-flight request.
        let pdu = unsafe { &*bindings::blk_mq_rq_to_pdu(rq).cast::<Pdu<T>>() };
        pdu.ret.store(ret, Release);
        // SAFETY: by the caller's guarantee.
        unsafe { Self::finish_ref(rq, how) };
    }

    /// Drops one reference of a submission; the last one ends the write's
    /// freeze protection, frees the bio_vec copy and completes the request
    /// as `how` says.
    ///
    /// # Safety
    ///
    /// The caller holds one of the submission's references, and is the
    /// worker's task if `how` is [`Completion::InTask`].
    unsafe fn finish_ref(rq: *mut bindings::request, how: Completion) {
        // SAFETY: the PDU of an in-flight request.
        let pdu = unsafe { &*bindings::blk_mq_rq_to_pdu(rq).cast::<Pdu<T>>() };
        if pdu.refs.fetch_sub(1, Full) != 1 {
            return;
        }
        // SAFETY: the last reference: nothing else uses the PDU's I/O state.
        unsafe {
            let bvecs = &mut *pdu.bvecs.get();
            if bvecs.capacity() > KEEP_BVECS {
                *bvecs = KVec::new();
            } else {
                bvecs.clear();
            }
            if pdu.flags.load(Relaxed) & PDU_WRITE != 0 {
                helpers::rust_loop_kiocb_end_write(pdu.iocb.get().cast());
            }
            match how {
                Completion::InTask => helpers::rust_loop_complete_request_direct(rq.cast()),
                Completion::Any => bindings::blk_mq_complete_request(rq),
            }
        }
    }
}

/// Where the last reference of a submission is dropped, which decides how
/// the request is completed.
#[derive(Clone, Copy)]
enum Completion {
    /// In the worker that submitted it, which may complete it there and
    /// then (`blk_mq_complete_request_direct()`). `blk_mq_complete_request()`
    /// would defer every completion of a single-queue device to the block
    /// softirq, on the submitting CPU (or an IPI to it): that round trip was
    /// most of the difference between one hardware queue and one per CPU at
    /// queue depth 1. A bio completed here ends in this task, as it would on
    /// a driver that completes in its own thread.
    InTask,
    /// Anywhere (`ki_complete`, which may run in interrupt context, and, for
    /// a loop device stacked on this one, inside that device's completion):
    /// `blk_mq_complete_request()`, which also keeps stacked completions
    /// from nesting on one stack.
    Any,
}

/// A request's bio_vecs as one array ([`Request::bvec_array`]): `nr`
/// entries from `bvec`, covering `bytes`, the iov_iter starting `offset`
/// bytes into the first.
struct BvecArray {
    bvec: *mut bindings::bio_vec,
    nr: usize,
    bytes: usize,
    offset: usize,
}

/// A `memalloc_noio_save()` scope.
struct NoIo(c_uint);

impl NoIo {
    fn enter() -> Self {
        // SAFETY: marks the current task; undone by `drop`, on this task.
        NoIo(unsafe { helpers::rust_loop_memalloc_noio_save() })
    }
}

impl Drop for NoIo {
    fn drop(&mut self) {
        // SAFETY: restores what `enter` saved, on the same task.
        unsafe { helpers::rust_loop_memalloc_noio_restore(self.0) };
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

/// `kiocb->ki_complete` of an asynchronous submission.
///
/// # Safety
///
/// `iocb` is the `iocb` field of the `Pdu<T>` of a request submitted by
/// [`Request::read_write`] that returned `-EIOCBQUEUED`.
unsafe extern "C" fn ki_complete_callback<T: DiskOps>(iocb: *mut bindings::kiocb, ret: c_long) {
    // SAFETY: `iocb` is inside a `Pdu<T>`, which is a request's PDU.
    let rq = unsafe {
        let pdu = iocb.cast::<u8>().sub(offset_of!(Pdu<T>, iocb));
        bindings::blk_mq_rq_from_pdu(pdu.cast())
    };
    // SAFETY: the asynchronous completion holds the second reference.
    unsafe { Request::<T>::set_result(rq, ret as i64, Completion::Any) };
}

/// `mq_ops->queue_rq`.
///
/// # Safety
///
/// Called by blk-mq for a request of a disk of `T` whose `queuedata` holds
/// the disk's `Arc<T>`.
pub(super) unsafe extern "C" fn queue_rq_callback<T: DiskOps>(
    _hctx: *mut bindings::blk_mq_hw_ctx,
    bd: *const bindings::blk_mq_queue_data,
) -> bindings::blk_status_t {
    // SAFETY: blk-mq passes a valid `bd` whose request it now hands to us.
    let (rq, last) = unsafe { ((*bd).rq, (*bd).last) };
    // SAFETY: a valid request owned by the driver from now on.
    unsafe { bindings::blk_mq_start_request(rq) };
    // SAFETY: a valid request.
    if unsafe { Request::<T>::decode_op(rq) }.is_none() {
        // As `do_req_filebacked()`: warn once and fail anything else.
        kernel::pr_warn_once!("unexpected request operation\n");
        // SAFETY: a started request, handed back exactly once.
        unsafe { bindings::blk_mq_end_request(rq, helpers::BLK_STS_IOERR) };
        return bindings::BLK_STS_OK as bindings::blk_status_t;
    }
    // SAFETY: started and owned, with a PDU set up by `init_request` and
    // an operation of `Op`'s (checked above).
    let rq = unsafe { Request::<T>::from_raw(rq) };
    let this: *const T = rq.driver();
    // SAFETY: the driver state outlives the request (see `driver`).
    unsafe { &*this }.queue_rq(rq, last);
    bindings::BLK_STS_OK as bindings::blk_status_t
}

/// `mq_ops->complete`.
///
/// # Safety
///
/// Called by blk-mq for a request passed to `blk_mq_complete_request` by
/// this module.
pub(super) unsafe extern "C" fn complete_callback<T: DiskOps>(rq: *mut bindings::request) {
    // SAFETY: the completer gave up ownership for this call.
    T::complete(unsafe { Request::from_raw(rq) });
}

/// `mq_ops->init_request`: sets up the PDU.
///
/// # Safety
///
/// Called by blk-mq for a request allocated with `cmd_size` of `Pdu<T>`.
pub(super) unsafe extern "C" fn init_request_callback<T: DiskOps>(
    _set: *mut bindings::blk_mq_tag_set,
    rq: *mut bindings::request,
    _hctx_idx: c_uint,
    _numa_node: c_int,
) -> c_int {
    // SAFETY: the PDU is `size_of::<Pdu<T>>()` bytes (`pdu_size`),
    // suitably aligned, and not in use.
    unsafe {
        let pdu = bindings::blk_mq_rq_to_pdu(rq).cast::<Pdu<T>>();
        ptr::addr_of_mut!((*pdu).iocb).write(Opaque::zeroed());
        ptr::addr_of_mut!((*pdu).work).write(Opaque::zeroed());
        bindings::init_work_with_key(
            Opaque::cast_into(ptr::addr_of!((*pdu).work)),
            Some(work_callback::<T>),
            false,
            c"rust_loop_request_work".as_char_ptr(),
            kernel::static_lock_class!().as_ptr(),
        );
        ptr::addr_of_mut!((*pdu).refs).write(Atomic::new(0));
        ptr::addr_of_mut!((*pdu).ret).write(Atomic::new(0));
        ptr::addr_of_mut!((*pdu).flags).write(Atomic::new(0));
        ptr::addr_of_mut!((*pdu).bvecs).write(UnsafeCell::new(KVec::new()));
        ptr::addr_of_mut!((*pdu).charge).write(UnsafeCell::new(Charge::NONE));
        ptr::addr_of_mut!((*pdu).next).write(Atomic::new(0));
        ptr::addr_of_mut!((*pdu)._p).write(PhantomData);
    }
    0
}

/// `mq_ops->exit_request`: drops the PDU.
///
/// # Safety
///
/// Called by blk-mq for a request whose PDU `init_request` set up.
pub(super) unsafe extern "C" fn exit_request_callback<T: DiskOps>(
    _set: *mut bindings::blk_mq_tag_set,
    rq: *mut bindings::request,
    _hctx_idx: c_uint,
) {
    // SAFETY: an initialized `Pdu<T>`, not used any more.
    unsafe { ptr::drop_in_place(bindings::blk_mq_rq_to_pdu(rq).cast::<Pdu<T>>()) };
}

/// The PDU size of a tag set of `T`.
pub(super) const fn pdu_size<T: DiskOps>() -> usize {
    core::mem::size_of::<Pdu<T>>()
}
