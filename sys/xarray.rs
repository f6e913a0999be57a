// SPDX-License-Identifier: GPL-2.0

//! An allocating XArray of reference-counted entries, with a mark.
//!
//! The kernel crate's `XArray` stores and loads at given indices; a loop
//! driver also needs what `loop.c` gets from its IDR: the lowest free index
//! (`LOOP_CTL_ADD` of -1, `idr_alloc()`), an index reserved while its
//! device is being made and filled in later, a per-entry flag
//! (`idr_visible`) and a walk in index order (`LOOP_CTL_GET_FREE`). An
//! [`AllocXArray`] is an XArray with `XA_FLAGS_ALLOC` (so `__xa_alloc()`
//! finds the lowest free index), one mark (`XA_MARK_1`; `XA_MARK_0` tracks
//! free slots in an allocating XArray) and entries that are `Arc<T>`,
//! handed out as clones taken under the XArray's lock.

use core::{marker::PhantomData, ptr};
use kernel::{
    bindings,
    error::to_result,
    prelude::*,
    sync::Arc,
    types::{ForeignOwnable, Opaque},
};

/// `XA_MARK_1` (a `__force` cast bindgen does not see); checked against
/// the kernel's in `rust_loop_helpers.c`.
const MARK: bindings::xa_mark_t = super::helpers::XA_MARK_1;

/// An XArray with `XA_FLAGS_ALLOC` whose entries are `Arc<T>` or reserved.
///
/// # Invariants
///
/// `xa` is an initialized xarray with `XA_FLAGS_ALLOC`; each entry in it is
/// either reserved (`XA_ZERO_ENTRY`, read as empty) or a pointer from
/// `Arc::<T>::into_foreign`, owned by the array.
#[pin_data(PinnedDrop)]
pub(crate) struct AllocXArray<T: Send + Sync + 'static> {
    #[pin]
    xa: Opaque<bindings::xarray>,
    _p: PhantomData<Arc<T>>,
}

// SAFETY: the entries are `Arc<T>` with `T: Send + Sync`, and every access
// to the array goes through its own lock or its RCU-safe lookups.
unsafe impl<T: Send + Sync + 'static> Send for AllocXArray<T> {}
// SAFETY: the entries are `Arc<T>` with `T: Send + Sync`, and every
// `&self` method takes the XArray's lock or uses its RCU-safe lookups.
unsafe impl<T: Send + Sync + 'static> Sync for AllocXArray<T> {}

/// The XArray's spinlock, held for a scope.
struct XaLock<'a>(*mut bindings::xarray, PhantomData<&'a ()>);

impl XaLock<'_> {
    fn new(xa: *mut bindings::xarray) -> Self {
        // SAFETY: `xa` is a valid, initialized xarray.
        unsafe { bindings::xa_lock(xa) };
        XaLock(xa, PhantomData)
    }
}

impl Drop for XaLock<'_> {
    fn drop(&mut self) {
        // SAFETY: taken by `new` on this task.
        unsafe { bindings::xa_unlock(self.0) };
    }
}

impl<T: Send + Sync + 'static> AllocXArray<T> {
    /// An empty array.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            // SAFETY: `xa` is valid for writes while the closure runs.
            // INVARIANT: initialized with `XA_FLAGS_ALLOC`, empty.
            xa <- Opaque::ffi_init(|xa| unsafe {
                bindings::xa_init_flags(xa, bindings::XA_FLAGS_ALLOC)
            }),
            _p: PhantomData,
        })
    }

    fn raw(&self) -> *mut bindings::xarray {
        self.xa.get()
    }

    /// Reserves `index`, or the lowest free index up to `max` when `index`
    /// is `None` (`idr_alloc()`), and returns it. The slot reads as empty
    /// until [`Self::fill`]. `EBUSY` if `index` is taken; `ENOSPC` if no
    /// index up to `max` is free.
    pub(crate) fn reserve(&self, index: Option<u32>, max: u32) -> Result<u32> {
        let gfp = bindings::GFP_KERNEL;
        let _lock = XaLock::new(self.raw());
        match index {
            Some(i) => {
                // SAFETY: the lock is held; a NULL entry reserves the slot.
                to_result(unsafe {
                    bindings::__xa_insert(self.raw(), i as usize, ptr::null_mut(), gfp)
                })?;
                Ok(i)
            }
            None => {
                let mut id = 0u32;
                let limit = bindings::xa_limit { min: 0, max };
                // SAFETY: the lock is held; a NULL entry reserves the slot.
                let ret = unsafe {
                    bindings::__xa_alloc(self.raw(), &mut id, ptr::null_mut(), limit, gfp)
                };
                // An allocating XArray with no free index says EBUSY.
                match to_result(ret) {
                    Ok(()) => Ok(id),
                    Err(e) if e == EBUSY => Err(ENOSPC),
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// Stores `value` in the slot `index` reserved by [`Self::reserve`]
    /// (the caller serializes reserve, fill and release of an index).
    /// Gives `value` back if it cannot be stored.
    pub(crate) fn fill(&self, index: u32, value: Arc<T>) -> core::result::Result<(), Arc<T>> {
        let p = value.into_foreign();
        let old = {
            let _lock = XaLock::new(self.raw());
            // SAFETY: the lock is held; a reserved slot exists, so nothing
            // is allocated, and it reads as NULL.
            unsafe { bindings::__xa_store(self.raw(), index as usize, p, bindings::GFP_KERNEL) }
        };
        // SAFETY: `old` is what `__xa_store` returned.
        if unsafe { bindings::xa_err(old) } != 0 {
            // SAFETY: `p` came from `into_foreign` and was not stored.
            return Err(unsafe { Arc::<T>::from_foreign(p) });
        }
        if !old.is_null() {
            // Not reserved but filled: the replaced entry is ours now.
            // SAFETY: a filled entry came from `into_foreign`.
            drop(unsafe { Arc::<T>::from_foreign(old) });
        }
        Ok(())
    }

    /// Frees `index`, reserved or filled; returns its entry if filled.
    pub(crate) fn release(&self, index: u32) -> Option<Arc<T>> {
        let p = {
            let _lock = XaLock::new(self.raw());
            // SAFETY: the lock is held.
            unsafe { bindings::__xa_erase(self.raw(), index as usize) }
        };
        // INVARIANT: the entry left the array; its reference is ours.
        // SAFETY: a non-NULL entry came from `into_foreign` (the array
        // reads a reserved slot as NULL).
        (!p.is_null()).then(|| unsafe { Arc::<T>::from_foreign(p) })
    }

    /// The entry at `index`, if filled.
    pub(crate) fn get(&self, index: u32) -> Option<Arc<T>> {
        let _lock = XaLock::new(self.raw());
        // SAFETY: the lock is held.
        let p = unsafe { bindings::xa_load(self.raw(), index as usize) };
        // SAFETY: a filled entry came from `into_foreign` and stays in the
        // array while the lock is held; the clone is a new reference.
        (!p.is_null()).then(|| unsafe { Arc::<T>::borrow(p) }.into())
    }

    /// Sets or clears the mark of `index` (a no-op for a free index).
    pub(crate) fn set_marked(&self, index: u32, on: bool) {
        // SAFETY: `xa_set_mark`/`xa_clear_mark` take the lock themselves.
        unsafe {
            if on {
                bindings::xa_set_mark(self.raw(), index as usize, MARK);
            } else {
                bindings::xa_clear_mark(self.raw(), index as usize, MARK);
            }
        }
    }

    /// Whether `index` is marked.
    pub(crate) fn marked(&self, index: u32) -> bool {
        // SAFETY: an RCU-safe lookup of a valid xarray.
        unsafe { bindings::xa_get_mark(self.raw(), index as usize, MARK) }
    }

    /// The filled entry of the lowest index, with its index.
    pub(crate) fn first(&self) -> Option<(u32, Arc<T>)> {
        let mut index = 0;
        let _lock = XaLock::new(self.raw());
        // SAFETY: the lock is held; `xa_find` only reads, and skips
        // reserved (zero) slots.
        let p = unsafe {
            bindings::xa_find(
                self.raw(),
                &mut index,
                u32::MAX as usize,
                bindings::XA_PRESENT,
            )
        };
        // SAFETY: as in `get`.
        (!p.is_null()).then(|| (index as u32, unsafe { Arc::<T>::borrow(p) }.into()))
    }

    /// The index of the first marked entry from `start` on, in index
    /// order, for which `pred` holds: one walk under the XArray's lock,
    /// with the entries borrowed, not cloned (`LOOP_CTL_GET_FREE`'s
    /// `idr_for_each_entry()`). `pred` runs with the spinlock held, so it
    /// must not sleep.
    pub(crate) fn find_marked_where(
        &self,
        start: u32,
        mut pred: impl FnMut(&T) -> bool,
    ) -> Option<u32> {
        let mut index = start as usize;
        let _lock = XaLock::new(self.raw());
        // SAFETY: the lock is held; `xa_find` only reads.
        let mut p = unsafe { bindings::xa_find(self.raw(), &mut index, u32::MAX as usize, MARK) };
        while !p.is_null() {
            // SAFETY: a filled entry came from `into_foreign` and stays in
            // the array while the lock is held; the borrow ends within
            // this iteration.
            let entry = unsafe { Arc::<T>::borrow(p) };
            if pred(&entry) {
                return Some(index as u32);
            }
            // SAFETY: the lock is held; `xa_find_after` only reads, and
            // continues after `index`.
            p = unsafe { bindings::xa_find_after(self.raw(), &mut index, u32::MAX as usize, MARK) };
        }
        None
    }
}

#[pinned_drop]
impl<T: Send + Sync + 'static> PinnedDrop for AllocXArray<T> {
    fn drop(self: Pin<&mut Self>) {
        while let Some((index, _)) = self.first() {
            drop(self.release(index));
        }
        // SAFETY: the array is valid and no longer used; `xa_destroy`
        // frees its nodes (reserved slots included).
        unsafe { bindings::xa_destroy(self.raw()) };
    }
}
