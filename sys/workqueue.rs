// SPDX-License-Identifier: GPL-2.0

//! A workqueue of the driver's own, allocated and destroyed by its owner:
//! the kernel crate offers only the system workqueues
//! ([`kernel::workqueue::system`] and friends), and queues work only on
//! the submitting CPU (`WORK_CPU_UNBOUND`), isolated or not; this one
//! queues on a housekeeping CPU, the submitting one or another.

use super::helpers;
use core::{ops::Deref, ptr::NonNull};
use kernel::{
    bindings,
    ffi::c_int,
    prelude::*,
    str::CStr,
    workqueue::{Queue, RawWorkItem},
};

/// The CPU to queue work on from this one, on a per-CPU workqueue: this
/// one (`WORK_CPU_UNBOUND`) if it is a housekeeping CPU, else the nearest
/// housekeeping CPU, so that no work lands on a CPU isolated by
/// `isolcpus=`, `nohz_full=` or an isolated cpuset partition, as none of
/// an unbound workqueue's does.
fn housekeeping_cpu() -> c_int {
    // SAFETY: no precondition; it disables preemption itself.
    unsafe { helpers::rust_loop_housekeeping_work_cpu() }
}

/// An owned workqueue (`alloc_workqueue()` / `destroy_workqueue()`).
///
/// # Invariants
///
/// `0` points to a workqueue allocated by [`OwnedQueue::new`] and not yet
/// destroyed; this value is its only owner.
pub(crate) struct OwnedQueue(NonNull<bindings::workqueue_struct>);

// SAFETY: a workqueue may be used and destroyed from any thread.
unsafe impl Send for OwnedQueue {}
// SAFETY: queueing work on a shared workqueue is thread-safe.
unsafe impl Sync for OwnedQueue {}

impl OwnedQueue {
    /// A per-CPU (bound), freezable workqueue named `name`, with the
    /// default concurrency.
    ///
    /// `loop.c` allocates its `loop%d` workqueues unbound. Bound, a work
    /// item queued by a request runs on the CPU that queued it: the
    /// submitter, which is about to sleep waiting for the I/O, gives way
    /// to the worker on its own CPU, and the worker wakes it there, with
    /// no wakeup sent to another CPU either way (what that saves per I/O
    /// at queue depth 1 is measured in `Documentation/benchmark.rst`;
    /// deeper queues and 1 MiB I/O gain nothing). A work item that sleeps
    /// lets the pool run the next one, so a device whose backing store
    /// blocks does not hold up the others queued on that CPU. Work queued
    /// from an isolated CPU runs on a housekeeping CPU instead
    /// ([`Self::enqueue_housekeeping`], [`Self::queue_raw_housekeeping`]).
    pub(crate) fn new_percpu_freezable(name: &CStr) -> Result<Self> {
        let flags = bindings::wq_flags_WQ_PERCPU | bindings::wq_flags_WQ_FREEZABLE;
        // SAFETY: `"%s"` with one valid NUL-terminated string argument;
        // the name is copied into the workqueue.
        let wq = unsafe {
            bindings::alloc_workqueue_noprof(c"%s".as_char_ptr(), flags, 0, name.as_char_ptr())
        };
        // INVARIANT: freshly allocated, owned by the new value.
        NonNull::new(wq).map(OwnedQueue).ok_or(ENOMEM)
    }

    /// Enqueues `w` as [`Queue::enqueue`] does, but on a housekeeping CPU
    /// when this CPU is isolated.
    pub(crate) fn enqueue_housekeeping<W, const ID: u64>(&self, w: W) -> W::EnqueueOutput
    where
        W: RawWorkItem<ID> + Send + 'static,
    {
        let wq = self.0.as_ptr();
        let cpu = housekeeping_cpu();
        // SAFETY: as in `Queue::enqueue`: the closure returns false only if
        // the work item is queued already, `W` is `Send` and `'static`, and
        // `__enqueue` keeps the pointer valid until the work function runs
        // if `queue_work_on` queued it. `wq` is valid (type invariant).
        unsafe { w.__enqueue(move |work| bindings::queue_work_on(cpu, wq, work)) }
    }

    /// `queue_work_on()` of a raw work item, on this CPU or, when it is
    /// isolated, a housekeeping one; false if it was pending already.
    ///
    /// # Safety
    ///
    /// `work` is an initialized `work_struct` that stays valid until its
    /// function has run, and is queued on no other workqueue while it is
    /// pending or running.
    pub(crate) unsafe fn queue_raw_housekeeping(&self, work: *mut bindings::work_struct) -> bool {
        // SAFETY: `work` as the caller guarantees; the workqueue is valid
        // (type invariant).
        unsafe { bindings::queue_work_on(housekeeping_cpu(), self.0.as_ptr(), work) }
    }

    /// `queue_work_on()` of a raw work item on another CPU than this one:
    /// the next online housekeeping CPU after it, or, where there is none,
    /// as [`Self::queue_raw_housekeeping`]; false if it was pending
    /// already. The CPU is chosen and the work queued on it with
    /// preemption disabled, so it is online when the work is queued.
    ///
    /// # Safety
    ///
    /// As [`Self::queue_raw_housekeeping`].
    pub(crate) unsafe fn queue_raw_elsewhere(&self, work: *mut bindings::work_struct) -> bool {
        // SAFETY: `work` as the caller guarantees; the workqueue is valid
        // (type invariant).
        unsafe { helpers::rust_loop_queue_work_elsewhere(self.0.as_ptr(), work) }
    }
}

impl Deref for OwnedQueue {
    type Target = Queue;

    fn deref(&self) -> &Queue {
        // SAFETY: valid until `drop` (type invariant), which needs `&mut`.
        unsafe { Queue::from_raw(self.0.as_ptr()) }
    }
}

impl Drop for OwnedQueue {
    /// Waits for queued and running work items, then frees the workqueue.
    fn drop(&mut self) {
        // SAFETY: allocated by `new`, destroyed once, here.
        unsafe { bindings::destroy_workqueue(self.0.as_ptr()) };
    }
}
