// SPDX-License-Identifier: GPL-2.0

//! A block major number registration (`__register_blkdev`) with a probe.
//!
//! The probe is what `CONFIG_BLOCK_LEGACY_AUTOLOAD` calls when a `dev_t` of
//! the major is opened and no disk has it: `loop.c` creates the missing
//! loop device there. The kernel's callback is a bare `void (*)(dev_t)`, so
//! the registration keeps its context in a module-wide slot; one module
//! registers at most one major with a probe.

use core::{
    marker::PhantomData,
    ptr, //
};
use kernel::{
    bindings,
    ffi::c_void,
    prelude::*,
    str::CStr,
    sync::{
        atomic::{Acquire, Atomic, Full},
        Arc,
    },
    types::ForeignOwnable, //
};

/// What a block major's probe does.
pub(crate) trait BlkdevProbe: Send + Sync + 'static {
    /// Called for an open of `major:minor` that has no disk.
    fn probe(&self, minor: u32);
}

/// The context of the one registration with a probe, an `Arc<T>` turned
/// into a raw pointer. Set before `__register_blkdev`, cleared after
/// `unregister_blkdev`.
static PROBE_CTX: Atomic<*mut c_void> = Atomic::new(ptr::null_mut());

/// A registered block major.
///
/// # Invariants
///
/// `major` is registered under `name` with `probe_trampoline::<T>` as its
/// probe, and `PROBE_CTX` holds an `Arc<T>` from `into_foreign`.
pub(crate) struct BlkdevMajor<T: BlkdevProbe> {
    major: u32,
    name: &'static CStr,
    _p: PhantomData<Arc<T>>,
}

impl<T: BlkdevProbe> BlkdevMajor<T> {
    /// Registers block major `major` as `name`, probing through `ctx`.
    ///
    /// Fails with `EIO` if the major cannot be had, as `loop_init` does, and
    /// `EBUSY` if this module already registered a major with a probe.
    pub(crate) fn register(major: u32, name: &'static CStr, ctx: Arc<T>) -> Result<Self> {
        let raw = ctx.into_foreign();
        if PROBE_CTX.cmpxchg(ptr::null_mut(), raw, Full).is_err() {
            // SAFETY: `raw` came from `into_foreign` above and was not stored.
            drop(unsafe { Arc::<T>::from_foreign(raw) });
            return Err(EBUSY);
        }
        // SAFETY: `name` is a static NUL-terminated string; the probe may be
        // called as soon as this returns, and finds its context set.
        let ret = unsafe {
            bindings::__register_blkdev(major, name.as_char_ptr(), Some(probe_trampoline::<T>))
        };
        if ret != 0 {
            Self::clear_ctx();
            return Err(EIO);
        }
        // INVARIANT: registered, with the context set.
        Ok(Self {
            major,
            name,
            _p: PhantomData,
        })
    }

    fn clear_ctx() {
        let raw = PROBE_CTX.xchg(ptr::null_mut(), Full);
        if !raw.is_null() {
            // SAFETY: a non-NULL `PROBE_CTX` came from `Arc::<T>::into_foreign`
            // and no probe runs any more (the major is not registered).
            drop(unsafe { Arc::<T>::from_foreign(raw) });
        }
    }
}

impl<T: BlkdevProbe> Drop for BlkdevMajor<T> {
    fn drop(&mut self) {
        // SAFETY: registered by the type invariant. `unregister_blkdev` takes
        // `major_names_lock`, under which probes run, so no probe runs after
        // it returns.
        unsafe { bindings::unregister_blkdev(self.major, self.name.as_char_ptr()) };
        Self::clear_ctx();
    }
}

/// # Safety
///
/// Called by the block layer, under `major_names_lock`, for a major that a
/// [`BlkdevMajor<T>`] registered.
unsafe extern "C" fn probe_trampoline<T: BlkdevProbe>(devt: bindings::dev_t) {
    let raw = PROBE_CTX.load(Acquire);
    if raw.is_null() {
        return;
    }
    // SAFETY: `raw` came from `Arc::<T>::into_foreign`; it is released only
    // after `unregister_blkdev`, which waits for this probe (same lock).
    let ctx = unsafe { Arc::<T>::borrow(raw) };
    ctx.probe(devt & ((1 << bindings::MINORBITS) - 1));
}
