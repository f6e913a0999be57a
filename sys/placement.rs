// SPDX-License-Identifier: GPL-2.0

//! Which CPU a [`super::worker::RequestWorker`]'s list runs on
//! ([`Placement`]): the CPU that queued it, unless the worker keeps
//! finding that the task that queued it was preempted for it.

use super::{
    task::{self, TaskSlot},
    workqueue::OwnedQueue,
};
use kernel::{
    bindings,
    sync::{
        aref::ARef,
        atomic::{Atomic, Relaxed},
    },
};

/// How many kicks, once the worker found the task that kicked it still
/// runnable, queue the list on another CPU before a kick queues it on its
/// own CPU again to look once more. Looking costs a task reference per
/// kick; looking again lets a submitter that now sleeps on its I/O (queue
/// depth 1) get the worker back on its own CPU, where the wakeups it and
/// the worker send each other stay local.
const AWAY_KICKS: u32 = 64;

/// Where a request handed to a worker woke it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kick {
    /// Nowhere: the request joined a list already queued or running.
    None,
    /// On the submitting CPU (a housekeeping CPU near it if it is
    /// isolated).
    Here,
    /// On the next housekeeping CPU after the submitting one (the
    /// submitting CPU's choice if it is the only one online):
    /// [`Placement`] found the submitter preempted for the worker.
    Elsewhere,
}

/// Where a worker's list is queued each time it goes from empty to not
/// empty (a kick).
///
/// On its own per-CPU workqueue the list runs on the CPU that queued it:
/// the submitter, which then usually sleeps waiting for its I/O, so the
/// worker has the CPU to itself and wakes the submitter there. A
/// submitter that keeps submitting (asynchronous I/O at depth) does not
/// sleep, and the scheduler may preempt it for the worker it just woke,
/// on every kick: two context switches per request, where a worker on
/// another CPU would have run beside it (`Documentation/benchmark.rst`,
/// the Debian qd32 gap). So a kick from this CPU leaves a reference to
/// its task ([`TaskSlot`]), and the worker, as it starts, looks whether
/// that task is still runnable: not asleep on its I/O but preempted (or
/// running elsewhere). Then the next [`AWAY_KICKS`] kicks queue the list
/// on the next online housekeeping CPU instead
/// ([`OwnedQueue::queue_raw_elsewhere`]), never an isolated one.
///
/// The list stays one work item on one workqueue, so it never runs on two
/// CPUs at once and its requests keep their order (a workqueue does not
/// run a work item again while it runs, wherever it is queued).
///
/// # Invariants
///
/// `waker` holds a task only between a kick on the waker's CPU and the
/// start of the run it queued (or of an earlier run that was still to
/// start): no task is kept alive by an idle worker.
pub(crate) struct Placement {
    /// Kicks left that go to another CPU. Kicks on several CPUs may race
    /// on it and the worker may set it meanwhile: a decrement may be lost
    /// (a kick more goes elsewhere), none goes below 0.
    away: Atomic<u32>,
    /// The task of the last kick queued on its own CPU.
    waker: TaskSlot,
}

impl Placement {
    /// Kicks on the submitting CPU until a run finds its waker runnable.
    pub(crate) fn new() -> Self {
        // INVARIANT: no task held.
        Placement {
            away: Atomic::new(0),
            waker: TaskSlot::new(),
        }
    }

    /// Queues `work`, the list's work item, on `wq` for a kick from the
    /// current task; returns where.
    ///
    /// # Safety
    ///
    /// As [`OwnedQueue::queue_raw_housekeeping`]; the work function calls
    /// [`Self::on_run`] as it starts.
    pub(crate) unsafe fn kick(&self, wq: &OwnedQueue, work: *mut bindings::work_struct) -> Kick {
        let away = self.away.load(Relaxed);
        if away > 0 {
            self.away.store(away - 1, Relaxed);
            // SAFETY: as the caller guarantees.
            unsafe { wq.queue_raw_elsewhere(work) };
            Kick::Elsewhere
        } else {
            // INVARIANT: the run this kick queues (or one still to start)
            // takes it.
            self.waker.store(ARef::from(&**kernel::current!()));
            // SAFETY: as the caller guarantees.
            unsafe { wq.queue_raw_housekeeping(work) };
            Kick::Here
        }
    }

    /// Called by the worker as a run starts: if the task of the last kick
    /// on its own CPU is still runnable, the next kicks go elsewhere.
    pub(crate) fn on_run(&self) {
        // INVARIANT: the slot is emptied as the run starts.
        if let Some(waker) = self.waker.take() {
            if task::is_running(&waker) {
                self.away.store(AWAY_KICKS, Relaxed);
            }
        }
    }
}
