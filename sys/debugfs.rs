// SPDX-License-Identifier: GPL-2.0

//! debugfs directories and read-only files whose open files hold the
//! module.
//!
//! The kernel crate's `debugfs::File` (7.3) builds its `file_operations`
//! without an owner. debugfs's proxy takes a reference on the owner of the
//! real operations when a file is opened (`fops_get()` in
//! `full_proxy_open_regular()`) and calls their `release` when it is
//! closed: with no owner, an open file does not hold the module, `rmmod`
//! succeeds, and the close calls `release` through operations in the
//! unloaded module's memory (an oops in `full_proxy_release()`). The
//! operations here carry `THIS_MODULE`: `rmmod` is refused (`EAGAIN`)
//! while one of these files is open.
//!
//! A [`File`] can also be taken out of debugfs before it is dropped
//! ([`File::remove`]), so that its name is free at once for a new file
//! while something else still holds the value that contains it.
//!
//! The shapes follow `kernel::debugfs` (`Dir::new`, `Dir::read_only_file`,
//! the [`Writer`] trait), so that the fix is one line there: an owner in
//! its `file_operations`.

use core::{marker::PhantomPinned, ptr};
use kernel::{
    bindings,
    debugfs::Writer,
    ffi::{c_int, c_void},
    fmt,
    prelude::*,
    seq_file::{seq_print, SeqFile},
    str::CStr,
    sync::atomic::{Atomic, Relaxed},
};

/// A debugfs directory, removed with everything below it when dropped.
///
/// # Invariants
///
/// `dentry` is a debugfs directory owned by this value, `NULL` or an
/// error pointer (debugfs failures are not fatal, and every debugfs call
/// accepts those).
pub(crate) struct Dir {
    dentry: *mut bindings::dentry,
}

// SAFETY: a dentry may be used and removed from any thread.
unsafe impl Send for Dir {}
// SAFETY: the debugfs calls made through `&Dir` are thread-safe.
unsafe impl Sync for Dir {}

impl Dir {
    /// Creates the directory `name` at the root of debugfs.
    pub(crate) fn new(name: &CStr) -> Self {
        // SAFETY: `name` is a valid C string; a NULL parent is the root.
        let dentry = unsafe { bindings::debugfs_create_dir(name.as_char_ptr(), ptr::null_mut()) };
        // INVARIANT: the dentry, NULL or an error pointer, is ours.
        Dir { dentry }
    }

    /// A read-only (0444) file `name` in this directory, showing `data`
    /// as its [`Writer`] prints it.
    pub(crate) fn read_only_file<'a, T: Writer + Sync + 'a>(
        &'a self,
        name: &'a CStr,
        data: T,
    ) -> impl PinInit<File<T>> + 'a {
        let parent = self.dentry;
        // SAFETY: the closure initializes every field of `slot` and
        // returns `Ok`.
        unsafe {
            pin_init::pin_init_from_closure(move |slot: *mut File<T>| {
                let data_ptr = ptr::addr_of_mut!((*slot).data);
                data_ptr.write(data);
                // SAFETY: `name` is a valid C string; `parent` is a
                // dentry, NULL or an error pointer (`Dir` invariant) that
                // outlives the file: every `File` is removed before its
                // directory ([`File`]'s invariant). `data_ptr` points to
                // the pinned value the file shows, alive until the file is
                // removed; the operations expect a `T` there.
                let dentry = bindings::debugfs_create_file_full(
                    name.as_char_ptr(),
                    0o444,
                    parent,
                    data_ptr.cast::<c_void>(),
                    ptr::null(),
                    &File::<T>::FOPS,
                );
                // INVARIANT: the file shows `data`, which is pinned.
                ptr::addr_of_mut!((*slot).dentry).write(Atomic::new(dentry));
                ptr::addr_of_mut!((*slot)._pin).write(PhantomPinned);
                Ok(())
            })
        }
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        // SAFETY: by the type invariant; removes the files left in it.
        unsafe { bindings::debugfs_remove(self.dentry) };
    }
}

/// A read-only debugfs file showing the value it contains.
///
/// # Invariants
///
/// `dentry` is the file, owned by this value, whose private data points to
/// `data`; or `NULL` or an error pointer once it is removed (or was never
/// created). The file is removed before `data` is dropped and before its
/// [`Dir`] is dropped (a `File` borrows nothing from its directory, so
/// the owner keeps the directory alive longer: the loop devices hold the
/// `Shared` that holds it).
#[pin_data(PinnedDrop)]
pub(crate) struct File<T> {
    dentry: Atomic<*mut bindings::dentry>,
    data: T,
    #[pin]
    _pin: PhantomPinned,
}

impl<T> File<T> {
    /// Takes the file out of debugfs: it disappears from the directory,
    /// a read of an open file fails from now on, and its name can be
    /// reused. The value stays. Idempotent.
    pub(crate) fn remove(&self) {
        let dentry = self.dentry.xchg(ptr::null_mut(), Relaxed);
        // SAFETY: by the type invariant; the exchange hands the dentry to
        // exactly one caller. `debugfs_remove` waits for the file's
        // operations in progress (the proxy's `debugfs_file_get()`) and
        // fails later ones, so nothing reads `data` after it returns.
        unsafe { bindings::debugfs_remove(dentry) };
    }
}

impl<T> core::ops::Deref for File<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.data
    }
}

#[pinned_drop]
impl<T> PinnedDrop for File<T> {
    fn drop(self: Pin<&mut Self>) {
        self.remove();
    }
}

/// Prints a [`Writer`] with `{}`.
struct Show<'a, T>(&'a T);

impl<T: Writer> fmt::Display for Show<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.write(f)
    }
}

impl<T: Writer + Sync> File<T> {
    /// `seq_file` operations through `single_open()`, owned by this
    /// module.
    const FOPS: bindings::file_operations = bindings::file_operations {
        owner: kernel::module::this_module::<crate::LocalModule>().as_ptr(),
        open: Some(Self::open),
        read: Some(bindings::seq_read),
        llseek: Some(bindings::seq_lseek),
        release: Some(bindings::single_release),
        ..pin_init::zeroed()
    };

    /// # Safety
    ///
    /// `inode` is the inode of a file created by [`Dir::read_only_file`]
    /// for a `T`, not yet removed; `file` is being opened.
    unsafe extern "C" fn open(inode: *mut bindings::inode, file: *mut bindings::file) -> c_int {
        // SAFETY: a valid inode by the caller's guarantee.
        let data = unsafe { (*inode).i_private };
        // SAFETY: `file` is being opened; `show` is called with `data`,
        // a `T` that stays alive while the file is not removed, and the
        // proxy runs every read between `debugfs_file_get()` and
        // `debugfs_file_put()`, which removal waits for.
        unsafe { bindings::single_open(file, Some(Self::show), data) }
    }

    /// # Safety
    ///
    /// `seq` is a live `seq_file` opened by [`Self::open`], in a read.
    unsafe extern "C" fn show(seq: *mut bindings::seq_file, _: *mut c_void) -> c_int {
        // SAFETY: `private` is the `T` given to `single_open`, alive for
        // the read (see `open`) and only ever shared.
        let data = unsafe { &*(*seq).private.cast::<T>() };
        // SAFETY: a live `seq_file` for the duration of this call.
        let seq = unsafe { SeqFile::from_raw(seq) };
        seq_print!(seq, "{}", Show(data));
        0
    }
}
