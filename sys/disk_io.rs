// SPDX-License-Identifier: GPL-2.0

//! A disk's data-path state ([`DiskOps::Io`]): what every request reads
//! without a lock, and the three ways to change it: bind it without a
//! freeze while no request can read it ([`Disk::bind_io`], as
//! `loop_configure()`), change it with the queue frozen
//! ([`Disk::freeze_io`], [`Disk::update_limits_frozen`]), and unbind it at
//! the last close without a freeze when no request is in flight
//! ([`Disk::release_io`], as `__loop_clr_fd()`). The cell lives in
//! [`Disk`]; this file owns every access to it. A generic block driver
//! needs none of it: the kernel crate's `block::mq` hands a driver its
//! queue data and leaves such state to the driver.

use super::disk::{Disk, DiskOps, FrozenQueue, GenDisk, Limits, Queue, ReleasingDisk};
use core::cell::UnsafeCell;
use kernel::{
    prelude::*,
    sync::{
        atomic::{Acquire, Relaxed, Release},
        barrier::{smp_mb, Full},
    },
};

impl<T: DiskOps> Disk<T> {
    /// The data-path state, for [`Request::io`]; `None` while the disk is
    /// not bound to one.
    ///
    /// [`Request::io`]: super::request::Request::io
    ///
    /// # Safety
    ///
    /// The caller is a request of this disk, started (so that a frozen
    /// [`IoGuard`] cannot exist while it is in flight) before a full
    /// barrier that precedes this call (so that [`Disk::release_io`] sees
    /// it in flight or this call sees the disk unbound), and the returned
    /// reference does not outlive the request.
    pub(super) unsafe fn io_unchecked(&self) -> Option<&T::Io> {
        // Pairs with the release store in `bind_io`: what it wrote is seen.
        if !self.io_bound.load(Acquire) {
            return None;
        }
        // SAFETY: no `IoGuard` exists while the returned reference does: a
        // frozen one waits for the caller's request to end, and
        // `release_io` clears `io_bound` before it checks that no request
        // is in flight, which by the caller's barrier either sees the
        // caller's request (and freezes) or was made before the load above
        // (which then read it clear). `bind_io` does not write while
        // `io_bound` is set, and it is cleared only by an `IoGuard`.
        Some(unsafe { &*self.io.get() })
    }

    /// Binds the disk to a data-path state without freezing its queue,
    /// as `loop_configure()` binds ("no need to freeze the queue as the
    /// device isn't bound yet"): `f` writes the state; when it succeeds,
    /// requests may read it from then on. `EBUSY` if the disk is bound
    /// already ([`Disk::release_io`] unbinds it).
    pub(crate) fn bind_io<R>(
        &self,
        disk: &GenDisk,
        f: impl FnOnce(&mut T::Io) -> Result<R>,
    ) -> Result<R> {
        if disk.raw() != self.gendisk {
            return Err(EINVAL);
        }
        let _lock = self.io_lock.lock();
        if self.io_bound.load(Relaxed) {
            return Err(EBUSY);
        }
        // SAFETY: `io_lock` excludes `IoGuard`s and other `bind_io`s, and no
        // request reads `io` while `io_bound` is clear: it was never set, or
        // `release_io` cleared it and then saw no request in flight (or
        // froze the queue until none was), so every request since read it
        // clear (`IoGuard`'s invariant).
        let r = f(unsafe { &mut *self.io.get() })?;
        self.io_bound.store(true, Release);
        Ok(r)
    }

    /// Freezes the queue of `disk`, which must be this handle's gendisk,
    /// and gives mutable access to the data-path state until the guard is
    /// dropped. No request is in flight meanwhile.
    pub(crate) fn freeze_io<'a>(&'a self, disk: &'a GenDisk) -> Result<IoGuard<'a, T>> {
        if disk.raw() != self.gendisk {
            return Err(EINVAL);
        }
        let lock = self.io_lock.lock();
        // INVARIANT: `io_lock` held, then the queue frozen.
        Ok(IoGuard {
            io: &self.io,
            queue: disk.queue(),
            _lock: lock,
            _frozen: Some(disk.queue().freeze()),
        })
    }

    /// Unbinds `disk`, which must be this handle's gendisk, from its
    /// data-path state at its last close and gives mutable access to that
    /// state, for the detach of `__loop_clr_fd()`: without freezing the
    /// queue, as `loop.c` does there ("called from the final ->release
    /// call only, so there can't be any outstanding I/O"), when no opener
    /// is left and no request is in flight; `loop.c` trusts this, here it
    /// is checked, and the queue is frozen if it does not hold. A freeze
    /// costs an RCU grace period and, taken under `open_mutex`, orders the
    /// queue's freeze after that lock for every disk.
    ///
    /// A request can still start with no opener (one requeued before the
    /// close, dispatched after it), and the unfrozen queue does not stop
    /// it: `io_bound` is cleared before the in-flight check, and
    /// [`Request::io`] reads it after the request started, each side with
    /// a full barrier between, so that either the check sees the request
    /// and the queue is frozen, or the request sees the disk unbound and
    /// does not read the state. A request still in flight here (none
    /// should be: the block layer flushed the disk before its last
    /// release) finds the disk unbound and fails.
    ///
    /// [`Request::io`]: super::request::Request::io
    pub(crate) fn release_io<'a>(&'a self, disk: &'a ReleasingDisk<'a>) -> Result<IoGuard<'a, T>> {
        if disk.raw() != self.gendisk {
            return Err(EINVAL);
        }
        let lock = self.io_lock.lock();
        let q = disk.queue();
        self.io_bound.store(false, Relaxed);
        // Orders the store above before the in-flight check's loads of the
        // requests' states; pairs with the barrier in `Request::io`.
        smp_mb(Full);
        let frozen = if disk.openers() == 0 && !q.inflight() {
            // Orders the ends of the requests `inflight` saw before the
            // accesses to `io` through the guard.
            smp_mb(Full);
            None
        } else {
            Some(q.freeze())
        };
        // INVARIANT: `io_lock` held; the queue frozen, or the disk in its
        // last release (`open_mutex` held, no opener) with no request in
        // flight.
        Ok(IoGuard {
            io: &self.io,
            queue: q,
            _lock: lock,
            _frozen: frozen,
        })
    }

    /// Starts a queue limits update (`queue_limits_start_update`), lets `f`
    /// change the limits, freezes the queue and commits them, and returns
    /// the commit's result with the data-path state still frozen, as
    /// `loop_set_dio()` and `loop_set_block_size()` do. Lock order:
    /// `io_lock`, `limits_lock`, queue freeze.
    pub(crate) fn update_limits_frozen<'a>(
        &'a self,
        disk: &'a GenDisk,
        f: impl FnOnce(&mut Limits),
    ) -> Result<(Result, IoGuard<'a, T>)> {
        if disk.raw() != self.gendisk {
            return Err(EINVAL);
        }
        let lock = self.io_lock.lock();
        let q = disk.queue();
        let mut lim = q.start_update();
        f(&mut lim);
        let frozen = q.freeze();
        let ret = q.commit_update(lim);
        // INVARIANT: `io_lock` held, then the queue frozen.
        Ok((
            ret,
            IoGuard {
                io: &self.io,
                queue: q,
                _lock: lock,
                _frozen: Some(frozen),
            },
        ))
    }
}

/// Exclusive access to a disk's data-path state, with no request in flight.
///
/// # Invariants
///
/// `_lock` is the disk's `io_lock`, so no other guard exists, and no
/// [`Request::io`] reference exists: `_frozen` freezes the queue of the
/// disk owning `io`, so that no request is in flight, or, when `None`,
/// that disk is in its last release ([`Disk::release_io`]: `open_mutex`
/// held, no opener), `io_bound` was cleared and then no request was in
/// flight, so that every request started since reads `io_bound` clear.
pub(crate) struct IoGuard<'a, T: DiskOps> {
    io: &'a UnsafeCell<T::Io>,
    queue: &'a Queue,
    _frozen: Option<FrozenQueue<'a>>,
    _lock: kernel::sync::MutexGuard<'a, ()>,
}

impl<T: DiskOps> IoGuard<'_, T> {
    /// The data-path state.
    pub(crate) fn io(&mut self) -> &mut T::Io {
        // SAFETY: no `Request::io` reference exists (type invariant), and
        // `&mut self` excludes other accesses through this guard.
        unsafe { &mut *self.io.get() }
    }

    /// The disk's queue: frozen, unless the guard is [`Disk::release_io`]'s.
    pub(crate) fn queue(&self) -> &Queue {
        self.queue
    }
}
