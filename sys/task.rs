// SPDX-License-Identifier: GPL-2.0

//! What the kernel crate's [`Task`] does not offer: a task reference that
//! one thread leaves for another to pick up ([`TaskSlot`]), and whether a
//! task is running or runnable rather than asleep ([`is_running`]).

use super::helpers;
use core::ptr::NonNull;
use kernel::{
    sync::{
        aref::ARef,
        atomic::{Atomic, Full},
    },
    task::Task,
};

/// Whether `task` is on a CPU or waiting for one (`task_is_running()`),
/// not asleep: a task preempted by another is runnable, one that went to
/// sleep to wait for something is not.
pub(crate) fn is_running(task: &Task) -> bool {
    // SAFETY: a shared reference to a `Task` keeps its refcount nonzero,
    // so the `task_struct` is valid for the call.
    unsafe { helpers::rust_loop_task_is_running(task.as_ptr().cast()) }
}

/// At most one reference to a task, left in the slot by one thread and
/// taken out by another, without a lock.
///
/// # Invariants
///
/// The value is 0 or the address of a [`Task`] on which the slot holds
/// one reference.
pub(crate) struct TaskSlot(Atomic<usize>);

impl TaskSlot {
    /// An empty slot.
    pub(crate) fn new() -> Self {
        // INVARIANT: empty.
        TaskSlot(Atomic::new(0))
    }

    /// Leaves `task` in the slot, dropping the reference left before, if
    /// any.
    pub(crate) fn store(&self, task: ARef<Task>) {
        let new = ARef::into_raw(task).as_ptr() as usize;
        // Full: whoever takes `new` sees the reference taken before it was
        // stored, and the reference given back here was taken before.
        // INVARIANT: the slot owns the reference `into_raw` gave up.
        let old = self.0.xchg(new, Full);
        // SAFETY: taken out of the slot, which owned it.
        drop(unsafe { Self::own(old) });
    }

    /// Takes the task left in the slot, if any, leaving it empty.
    pub(crate) fn take(&self) -> Option<ARef<Task>> {
        // Full: as in `store`.
        // INVARIANT: empty; the reference moves to the caller.
        let old = self.0.xchg(0, Full);
        // SAFETY: taken out of the slot, which owned it.
        unsafe { Self::own(old) }
    }

    /// The reference at `addr`, a value taken out of the slot.
    ///
    /// # Safety
    ///
    /// `addr` is 0 or the address of a task on which the caller owns one
    /// reference (one the slot held), given up to the result.
    unsafe fn own(addr: usize) -> Option<ARef<Task>> {
        // SAFETY: as the caller guarantees.
        NonNull::new(addr as *mut Task).map(|task| unsafe { ARef::from_raw(task) })
    }
}

impl Drop for TaskSlot {
    fn drop(&mut self) {
        drop(self.take());
    }
}
