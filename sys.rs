// SPDX-License-Identifier: GPL-2.0

//! The internal layer between rust_loop's driver logic and the kernel's C
//! API: every `unsafe` line of the module lives under this module.
//!
//! The kernel crate covers a lot (`Mutex`, `Arc`, `KVec`, `UserSlice`,
//! workqueues, module parameters), but not what a loop driver needs from the
//! block layer and the VFS. This layer adds those pieces as small safe
//! abstractions shaped like the kernel crate's own:
//!
//! - [`misc`]: a misc device at a fixed minor (`/dev/loop-control` is 237).
//! - [`blkdev`]: a block major registration with a probe callback.
//! - [`disk`]: a blk-mq tag set and gendisk with the driver's own
//!   `block_device_operations` and private data, and the operations on a
//!   live disk (capacity, uevents, partitions, queue limits, freezing).
//! - [`disk_io`]: the disk's data-path state, read by requests without a
//!   lock, and its bind, freeze and release guards.
//! - [`debugfs`]: a debugfs directory and read-only files whose open
//!   files hold the module (the kernel crate's give no owner).
//! - [`param`]: `int` module parameters shown in sysfs, as `loop.c` has.
//! - [`request`]: started blk-mq requests and the zero-copy file I/O.
//! - [`worker`]: where requests run in process context, in their cgroups.
//! - [`placement`]: which CPU a worker's list runs on.
//! - [`task`]: a task reference passed between threads; whether a task is
//!   runnable.
//! - [`file`]: the backing file (size, capabilities, fsync, fallocate).
//! - [`sync`]: killable waits for a kernel crate `Mutex`.
//! - [`sysfs`]: an attribute group on a disk.
//! - [`uapi`]: the loop UAPI (`<linux/loop.h>`), which bindgen does not see.
//! - [`workqueue`]: a workqueue of the driver's own (one per device).
//! - [`xarray`]: an allocating XArray of `Arc`s with a mark, for the
//!   registry of devices (the kernel crate's `XArray` neither allocates
//!   indices nor marks entries).
//! - [`helpers`]: declarations of the C wrappers in `rust_loop_helpers.c`.
//!
//! Driver code above this layer is safe Rust.

pub(crate) mod blkdev;
pub(crate) mod debugfs;
pub(crate) mod disk;
pub(crate) mod disk_io;
pub(crate) mod file;
pub(crate) mod helpers;
pub(crate) mod misc;
pub(crate) mod param;
pub(crate) mod placement;
pub(crate) mod request;
pub(crate) mod sync;
pub(crate) mod sysfs;
pub(crate) mod task;
pub(crate) mod uapi;
pub(crate) mod worker;
pub(crate) mod workqueue;
pub(crate) mod xarray;

use kernel::bindings;

/// A reference on this module, keeping it from being unloaded.
///
/// A bound loop device holds one (as `loop.c`'s `__module_get()` in
/// `loop_configure()`), so `rmmod` is refused while any device is bound,
/// even when nothing has it open.
///
/// # Invariants
///
/// The instance owns one reference on `THIS_MODULE`.
pub(crate) struct ModuleRef(());

impl ModuleRef {
    /// Takes a reference on this module.
    ///
    /// Only valid while the module is known to be live, which it is in any
    /// callback of an open device: the block layer holds a reference for
    /// every opener.
    pub(crate) fn get() -> Self {
        let module = kernel::module::this_module::<crate::LocalModule>().as_ptr();
        // SAFETY: `module` is this module's `THIS_MODULE`, valid while the
        // module's code runs; `__module_get` accepts NULL for built-in code.
        unsafe { bindings::__module_get(module) };
        // INVARIANT: the reference was just taken.
        ModuleRef(())
    }
}

impl Drop for ModuleRef {
    fn drop(&mut self) {
        let module = kernel::module::this_module::<crate::LocalModule>().as_ptr();
        // SAFETY: by the type invariant this instance owns one reference.
        unsafe { bindings::module_put(module) };
    }
}

/// Returns whether the current task has `CAP_SYS_ADMIN`.
pub(crate) fn capable_sys_admin() -> bool {
    // SAFETY: `capable` may be called from any process context.
    unsafe { bindings::capable(bindings::CAP_SYS_ADMIN as i32) }
}
