// SPDX-License-Identifier: GPL-2.0

//! Where a disk's requests are handed to run in process context, in the
//! cgroups that issued them: [`RequestWorker`] (`loop.c`'s
//! `lo->workqueue`, its workers and their lists), a request's own work
//! item, and the cgroup scope of a worker running a request
//! (`loop_handle_cmd()`'s `kthread_associate_blkcg()` and
//! `set_active_memcg()`). Unlike [`super::request`] it is not what every
//! blk-mq driver needs: it is the loop driver's way of reaching a backing
//! file from a context that may block.

use super::{
    disk::DiskOps,
    helpers,
    placement::{Kick, Placement},
    request::{Pdu, Request, Status},
    workqueue::OwnedQueue,
};
use core::{marker::PhantomData, mem::offset_of, ptr};
use kernel::{
    bindings,
    ffi::{c_uint, c_void},
    prelude::*,
    str::CStr,
    sync::{
        atomic::{Acquire, Atomic, Relaxed, Release},
        SetOnce,
    },
    types::Opaque,
    workqueue::RawWorkItem,
};

// SAFETY: `__enqueue` passes the PDU's `work_struct`, initialized with
// `work_callback::<T>` (a `Pdu` invariant); on success ownership moves to
// the work item until the callback rebuilds the `Request`, so the pointer
// stays valid; on failure ownership is returned.
unsafe impl<T: DiskOps> RawWorkItem<0> for Request<T> {
    type EnqueueOutput = Result<(), Self>;

    unsafe fn __enqueue<F>(self, queue_work_on: F) -> Self::EnqueueOutput
    where
        F: FnOnce(*mut bindings::work_struct) -> bool,
    {
        let work = self.pdu().work.get();
        if queue_work_on(work) {
            core::mem::forget(self);
            Ok(())
        } else {
            Err(self)
        }
    }
}

/// The work function of a deferred request.
///
/// # Safety
///
/// `work` is the `work` field of the `Pdu<T>` of a request deferred by
/// [`RequestWorker::defer`].
pub(super) unsafe extern "C" fn work_callback<T: DiskOps>(work: *mut bindings::work_struct) {
    // SAFETY: `work` is inside a `Pdu<T>`, which is a request's PDU.
    let rq = unsafe {
        let pdu = work.cast::<u8>().sub(offset_of!(Pdu<T>, work));
        bindings::blk_mq_rq_from_pdu(pdu.cast())
    };
    // SAFETY: `defer` gave up ownership for this call.
    run_deferred(unsafe { Request::<T>::from_raw(rq) });
}

/// Where a disk's requests go to reach the backing file, in process
/// context (`loop.c`'s `lo->workqueue` and its workers): a workqueue of the
/// disk's own, and on it one work item that runs a list of requests in
/// the order they came, as `loop_queue_work()` adds commands to a worker's
/// list and `loop_process_work()` runs them.
///
/// [`Self::defer`] gives a request a work item of its own instead (in its
/// PDU), so that requests that may block for long run side by side; the
/// list is for those that do not, which then cost one queueing and one
/// worker wakeup per batch rather than per request.
///
/// The workqueue is allocated when the disk is first bound
/// ([`Self::start`]), as `loop_configure()` allocates `lo->workqueue`, so
/// that a disk never bound costs none of its per-CPU structures. It is
/// destroyed, which waits for its work, before the memory of the work item
/// and the list's [`Placement`] go; the owner must drop this before the
/// tag set of the requests it was given ([`super::disk::Disk`]). The list
/// runs on the CPU that queued it or, while its submitter is found
/// preempted for it, on the next one ([`Placement`]).
///
/// # Invariants
///
/// `work` is initialized with `list_work_callback::<T>` and queued only on
/// `wq`, and only once `wq` is set. `head` is 0 or the address of the
/// `Pdu<T>` of a started request owned by the list, whose `next` continues
/// the list. While `head` is not 0, `work` is pending or running and has
/// not yet taken the list.
#[pin_data]
pub(crate) struct RequestWorker<T: DiskOps> {
    wq: SetOnce<OwnedQueue>,
    head: Atomic<usize>,
    placement: Placement,
    #[pin]
    work: Opaque<bindings::work_struct>,
    _p: PhantomData<T>,
}

// SAFETY: the list is changed only with atomic operations; the work item
// and the workqueue may be used from any thread.
unsafe impl<T: DiskOps> Send for RequestWorker<T> {}
// SAFETY: the list is changed only with atomic operations; the work item
// and the workqueue may be used from any thread, by several at once.
unsafe impl<T: DiskOps> Sync for RequestWorker<T> {}

impl<T: DiskOps> RequestWorker<T> {
    /// A worker with no workqueue yet ([`Self::start`]).
    pub(crate) fn new() -> impl PinInit<Self, Error> {
        // INVARIANT: `work` is initialized with the list's callback; the
        // list is empty.
        try_pin_init!(Self {
            wq: SetOnce::new(),
            head: Atomic::new(0),
            placement: Placement::new(),
            // SAFETY: `slot` is valid for the work item's initialization;
            // the name and the lock class are static.
            work <- Opaque::ffi_init(|slot| unsafe {
                bindings::init_work_with_key(
                    slot,
                    Some(list_work_callback::<T>),
                    false,
                    c"rust_loop_list_work".as_char_ptr(),
                    kernel::static_lock_class!().as_ptr(),
                )
            }),
            _p: PhantomData,
        }? Error)
    }

    /// Gives the worker its freezable workqueue, named `name`, unless it
    /// has one: as `loop.c` allocates for each device (`loop%d`) at its
    /// first configure, but per-CPU where `loop.c`'s is unbound (see
    /// [`OwnedQueue::new_percpu_freezable`]). The caller serializes the
    /// calls.
    pub(crate) fn start(&self, name: &CStr) -> Result {
        if self.wq.as_ref().is_none() {
            // Not populated and the caller's only: cannot fail.
            self.wq.populate(OwnedQueue::new_percpu_freezable(name)?);
        }
        Ok(())
    }

    /// Hands `rq` to the worker, which calls [`DiskOps::work`] with it in
    /// the name of the request's cgroups (see [`WorkerScope`]): on the
    /// list, in order, if `in_order(&rq, root)` is true, where `root`
    /// tells whether the request comes from the root block cgroup (or
    /// from none); else in a work item of its own, for requests that may
    /// block for long. The cgroups are looked up once, here. Fails the
    /// request before [`Self::start`]. Returns where it woke the worker.
    pub(crate) fn queue(
        &self,
        rq: Request<T>,
        in_order: impl FnOnce(&Request<T>, bool) -> bool,
    ) -> Kick {
        let Some(wq) = self.wq.as_ref() else {
            rq.end(Status::IOERR);
            return Kick::None;
        };
        let root = store_charge(&rq);
        if in_order(&rq, root) {
            self.defer_in_order(wq, rq)
        } else {
            Self::defer(wq, rq);
            Kick::Here
        }
    }

    /// Hands `rq`, its charge stored, to a work item of its own on `wq`.
    fn defer(wq: &OwnedQueue, rq: Request<T>) {
        if let Err(rq) = wq.enqueue_housekeeping(rq) {
            // The work item cannot be pending while we own the request.
            kernel::pr_warn_once!("request work already queued\n");
            // SAFETY: owned again: the charge cell is ours.
            unsafe { (*rq.pdu().charge.get()).release() };
            rq.end(Status::IOERR);
        }
    }

    /// Adds `rq`, its charge stored, to the list, which the worker runs in
    /// order on `wq`, the worker's, calling [`DiskOps::work`] with each
    /// request as [`Self::defer`] does; returns where it woke the worker.
    fn defer_in_order(&self, wq: &OwnedQueue, rq: Request<T>) -> Kick {
        let pdu = ptr::from_ref(rq.pdu());
        // The list owns the request from the push on.
        core::mem::forget(rq);
        let mut old = self.head.load(Relaxed);
        loop {
            // SAFETY: the PDU of a request we own until the push succeeds.
            unsafe { (*pdu).next.store(old, Relaxed) };
            // Release: the worker sees the PDU as written here.
            match self.head.cmpxchg(old, pdu as usize, Release) {
                Ok(_) => break,
                Err(cur) => old = cur,
            }
        }
        if old == 0 {
            // The list was empty, so the work item already took every
            // earlier request (type invariant): queue it again. It may be
            // running still; then it runs once more after.
            // SAFETY: `work` is initialized and queued only on `wq`, the
            // worker's, which outlives it (type invariant); its function
            // starts with `on_run`.
            unsafe { self.placement.kick(wq, self.work.get()) }
        } else {
            Kick::None
        }
    }
}

/// The work function of a [`RequestWorker`]'s list: takes the list, runs
/// its requests in the order they came, and again until it is empty.
///
/// # Safety
///
/// `work` is the `work` field of a `RequestWorker<T>`.
unsafe extern "C" fn list_work_callback<T: DiskOps>(work: *mut bindings::work_struct) {
    // SAFETY: `work` is inside a `RequestWorker<T>`, alive while its work
    // runs (its workqueue is destroyed before it goes).
    let this = unsafe {
        &*work
            .cast::<u8>()
            .sub(offset_of!(RequestWorker<T>, work))
            .cast::<RequestWorker<T>>()
    };
    this.placement.on_run();
    loop {
        // Acquire: pairs with the pushes' release.
        let mut lifo = this.head.xchg(0, Acquire);
        if lifo == 0 {
            break;
        }
        // Reverse the list into the order of the pushes.
        let mut fifo = 0;
        while lifo != 0 {
            let pdu = lifo as *const Pdu<T>;
            // SAFETY: a PDU of a request the taken list owns.
            let next = unsafe { (*pdu).next.load(Relaxed) };
            // SAFETY: a PDU of a request the taken list owns.
            unsafe { (*pdu).next.store(fifo, Relaxed) };
            fifo = lifo;
            lifo = next;
        }
        while fifo != 0 {
            let pdu = fifo as *mut Pdu<T>;
            // SAFETY: a PDU of a request the taken list owns; read before
            // the request is handed on and maybe over.
            fifo = unsafe { (*pdu).next.load(Relaxed) };
            // SAFETY: the list gives up its ownership of this request.
            let rq = unsafe { Request::<T>::from_raw(bindings::blk_mq_rq_from_pdu(pdu.cast())) };
            run_deferred(rq);
            // As loop_process_work(): a long list does not hog the CPU.
            // SAFETY: process context, no lock held.
            unsafe { helpers::rust_loop_cond_resched() };
        }
    }
}

/// Calls [`DiskOps::work`] with a deferred request in the name of its
/// cgroups.
fn run_deferred<T: DiskOps>(rq: Request<T>) {
    // SAFETY: we own the request and with it the charge `store_charge`
    // stored; taking it leaves nothing to release in the PDU.
    let charge = unsafe { core::mem::replace(&mut *rq.pdu().charge.get(), Charge::NONE) };
    // The scope owns the charge: the request may be over (and reused) as
    // soon as `work` returns, or before.
    let _scope = WorkerScope::enter(charge);
    T::work(rq);
}

/// Stores the request's cgroups in its PDU for the worker: the blkcg
/// of its first bio and the memory cgroup of the same cgroup, as
/// `loop_queue_rq()` takes them. Returns whether the request comes
/// from the root block cgroup, or from none
/// (`queue_on_root_worker()`): then it carries no charge.
fn store_charge<T: DiskOps>(rq: &Request<T>) -> bool {
    // SAFETY: an owned request: its bio and the bio's blkcg are alive.
    let charge = unsafe { Charge::of(rq.raw()) };
    let root = charge.blkcg.is_null();
    // SAFETY: we own the request and with it the PDU's charge cell; it
    // is not on a worker's list or queued.
    unsafe { *rq.pdu().charge.get() = charge };
    root
}

/// The cgroups a deferred request's I/O is charged to (`cmd->blkcg_css`,
/// `cmd->memcg_css` of `loop.c`).
///
/// # Invariants
///
/// `blkcg` is NULL or the blkcg css of the first bio of the request whose
/// PDU holds this value (valid while the request is owned); `memcg` is
/// NULL or a css on which this value holds a reference. Both are NULL for
/// a request of the root cgroup: the worker, a kthread of the root cgroup,
/// does its I/O in the root's name as it is.
pub(super) struct Charge {
    blkcg: *mut c_void,
    memcg: *mut c_void,
}

impl Charge {
    /// No cgroup: the worker's own (the root).
    pub(super) const NONE: Charge = Charge {
        blkcg: ptr::null_mut(),
        memcg: ptr::null_mut(),
    };

    /// The cgroups of `rq`, with a reference on the memory cgroup; none
    /// for the root cgroup.
    ///
    /// # Safety
    ///
    /// `rq` is a started request owned by the caller.
    pub(super) unsafe fn of(rq: *mut bindings::request) -> Charge {
        // SAFETY: a valid request by the caller's guarantee.
        let blkcg = unsafe { helpers::rust_loop_rq_blkcg_css(rq.cast()) };
        // SAFETY: `blkcg` is NULL or a live css (the bio holds it).
        let memcg = unsafe { helpers::rust_loop_get_memcg_css(blkcg) };
        // INVARIANT: as taken just above.
        Charge { blkcg, memcg }
    }

    /// Drops the memory cgroup reference.
    pub(super) fn release(&mut self) {
        if !self.memcg.is_null() {
            // SAFETY: a reference we hold (type invariant), given up once.
            unsafe { helpers::rust_loop_css_put(self.memcg) };
        }
        *self = Charge::NONE;
    }
}

/// `loop_process_work()` and `loop_handle_cmd()` around one request: the
/// task is not throttled for the dirty pages of the device it serves
/// (`PF_LOCAL_THROTTLE`), allocates without I/O (`PF_MEMALLOC_NOIO`), and
/// issues its bios and charges its memory in the request's cgroups. The
/// values are copied out of the request, which may be over before the
/// scope ends.
struct WorkerScope {
    flags: c_uint,
    charge: Charge,
    old_memcg: *mut c_void,
}

impl WorkerScope {
    /// Enters the scope on the current (worker) task, taking `charge`.
    fn enter(charge: Charge) -> Self {
        // SAFETY: changes the current task's flags; restored by `drop`.
        let flags = unsafe { helpers::rust_loop_worker_flags_save() };
        if !charge.blkcg.is_null() {
            // SAFETY: the request is still owned by the worker, so its
            // bio's blkcg is alive; the kthread takes its own reference.
            unsafe { helpers::rust_loop_kthread_associate_blkcg(charge.blkcg) };
        }
        let old_memcg = if charge.memcg.is_null() {
            ptr::null_mut()
        } else {
            // SAFETY: `charge` holds a reference on the css, kept until
            // after the previous memcg is restored in `drop`.
            unsafe { helpers::rust_loop_set_active_memcg_css(charge.memcg) }
        };
        WorkerScope {
            flags,
            charge,
            old_memcg,
        }
    }
}

impl Drop for WorkerScope {
    fn drop(&mut self) {
        if !self.charge.blkcg.is_null() {
            // SAFETY: drops the kthread's own reference taken in `enter`.
            unsafe { helpers::rust_loop_kthread_associate_blkcg(ptr::null_mut()) };
        }
        if !self.charge.memcg.is_null() {
            // SAFETY: restores what `enter` replaced, on the same task.
            unsafe { helpers::rust_loop_set_active_memcg(self.old_memcg) };
        }
        self.charge.release();
        // SAFETY: restores what `enter` saved, on the same task.
        unsafe { helpers::rust_loop_worker_flags_restore(self.flags) };
    }
}
