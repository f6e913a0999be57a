// SPDX-License-Identifier: GPL-2.0

//! A workqueue of the driver's own, allocated and destroyed by its owner:
//! the kernel crate offers only the system workqueues
//! ([`kernel::workqueue::system`] and friends).

use core::{ops::Deref, ptr::NonNull};
use kernel::{bindings, prelude::*, str::CStr, workqueue::Queue};

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
    /// blocks does not hold up the others queued on that CPU.
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
}

impl OwnedQueue {
    /// The `workqueue_struct`, valid as long as `self`.
    pub(crate) fn as_raw(&self) -> *mut bindings::workqueue_struct {
        self.0.as_ptr()
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
