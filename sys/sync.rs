// SPDX-License-Identifier: GPL-2.0

//! Killable mutex acquisition (`mutex_lock_killable()`) for the kernel
//! crate's [`Mutex`], which offers only `lock` and `try_lock`.
//!
//! `loop.c` takes `lo_mutex`, `loop_ctl_mutex` and `loop_validate_mutex`
//! killably wherever a user task waits for them (open, the ioctls,
//! `/dev/loop-control`): a task stuck behind a configure that waits on a
//! hung backing store can still be killed, instead of piling up in D
//! state. Only the teardown paths (`lo_release()`, `__loop_clr_fd()`,
//! device removal) wait unconditionally.

use super::helpers;
use core::ptr;
use kernel::{
    prelude::*,
    sync::{lock::Guard, Mutex, MutexGuard},
};

/// `mutex_lock_killable()` on a kernel crate [`Mutex`].
pub(crate) trait LockKillable<T> {
    /// Waits for the mutex unless a fatal signal arrives: then `EINTR`.
    fn lock_killable(&self) -> Result<MutexGuard<'_, T>>;
}

impl<T> LockKillable<T> for Mutex<T> {
    fn lock_killable(&self) -> Result<MutexGuard<'_, T>> {
        // `Lock` is `#[repr(C)]` and its first field is the C lock
        // object: for a `Mutex`, the `struct mutex` that `lock` takes.
        let raw = ptr::from_ref(self).cast_mut().cast::<kernel::ffi::c_void>();
        // SAFETY: `raw` points to the initialized `struct mutex` of this
        // pinned `Mutex`, valid while `&self` is.
        let ret = unsafe { helpers::rust_loop_mutex_lock_killable(raw) };
        if ret != 0 {
            return Err(Error::from_errno(ret));
        }
        // SAFETY: the mutex was just acquired by this task, as
        // `MutexBackend::lock` would; the guard unlocks it on drop. A
        // mutex's guard state is `()`.
        Ok(unsafe { Guard::new(self, ()) })
    }
}
