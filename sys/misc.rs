// SPDX-License-Identifier: GPL-2.0

//! A misc character device at a fixed minor, answering ioctls only.
//!
//! `kernel::miscdevice::MiscDeviceRegistration` always asks for a dynamic
//! minor and gives its `open`/`ioctl` callbacks no driver context.
//! `/dev/loop-control` must be `10:237` (`LOOP_CTRL_MINOR`, what
//! `devname:loop-control` and `char-major-10-237` module aliases promise),
//! and its ioctls need the device registry. [`FixedMinorMisc`] registers a
//! `struct miscdevice` with the given minor and file operations shaped like
//! `loop.c`'s `loop_ctl_fops`: `nonseekable_open`, the same handler for
//! `unlocked_ioctl` and `compat_ioctl` (the arguments are integers, not
//! pointers), `noop_llseek`, and `THIS_MODULE` as owner.

use core::{marker::PhantomData, mem::offset_of};
use kernel::{
    bindings,
    error::to_result,
    ffi::{c_long, c_uint, c_ulong},
    prelude::*,
    str::CStr,
    sync::Arc,
    types::Opaque, //
};

/// The ioctl handler of a [`FixedMinorMisc`] device.
pub(crate) trait MiscIoctl: Send + Sync + 'static {
    /// Handles `cmd` with argument `arg`; returns the ioctl's result.
    fn ioctl(&self, cmd: u32, arg: usize) -> Result<isize>;
}

/// A registered misc device with a fixed minor.
///
/// # Invariants
///
/// `misc` is registered with `misc_register()` for the whole life of the
/// instance, its `fops` is `Vtable::<T>::FOPS`, and `ctx` is valid as long
/// as `misc` is registered.
#[pin_data(PinnedDrop)]
pub(crate) struct FixedMinorMisc<T: MiscIoctl> {
    #[pin]
    misc: Opaque<bindings::miscdevice>,
    ctx: Arc<T>,
}

// SAFETY: the registration may be dropped (deregistered) on any thread, and
// `ctx` is `Send + Sync`.
unsafe impl<T: MiscIoctl> Send for FixedMinorMisc<T> {}
// SAFETY: no `&self` method mutates anything.
unsafe impl<T: MiscIoctl> Sync for FixedMinorMisc<T> {}

impl<T: MiscIoctl> FixedMinorMisc<T> {
    /// Registers the device `name` at misc minor `minor`, handing its
    /// ioctls to `ctx`.
    pub(crate) fn register(
        minor: u32,
        name: &'static CStr,
        ctx: Arc<T>,
    ) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            ctx,
            misc <- Opaque::try_ffi_init(move |slot: *mut bindings::miscdevice| {
                let mut misc: bindings::miscdevice = pin_init::zeroed();
                misc.minor = minor as i32;
                misc.name = name.as_char_ptr();
                misc.fops = &Vtable::<T>::FOPS;
                // SAFETY: `slot` is valid for writes and pinned; it stays
                // registered until `drop` deregisters it.
                unsafe { slot.write(misc) };
                // SAFETY: `slot` holds an initialized `miscdevice`.
                // INVARIANT: on success the device is registered.
                to_result(unsafe { bindings::misc_register(slot) })
            }),
        })
    }
}

#[pinned_drop]
impl<T: MiscIoctl> PinnedDrop for FixedMinorMisc<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: registered by the type invariant; `misc_deregister` waits
        // for no callback, but every callback runs with the file open, and
        // the module (fops owner) cannot be unloaded while a file is open,
        // so `ctx` outlives them.
        unsafe { bindings::misc_deregister(self.misc.get()) };
    }
}

struct Vtable<T>(PhantomData<T>);

impl<T: MiscIoctl> Vtable<T> {
    const FOPS: bindings::file_operations = bindings::file_operations {
        owner: kernel::module::this_module::<crate::LocalModule>().as_ptr(),
        open: Some(bindings::nonseekable_open),
        unlocked_ioctl: Some(Self::ioctl),
        compat_ioctl: Some(Self::ioctl),
        llseek: Some(bindings::noop_llseek),
        ..pin_init::zeroed()
    };

    /// # Safety
    ///
    /// `file` is an open file of a device registered by
    /// [`FixedMinorMisc<T>`].
    unsafe extern "C" fn ioctl(file: *mut bindings::file, cmd: c_uint, arg: c_ulong) -> c_long {
        // SAFETY: `misc_open()` set `private_data` to the `struct
        // miscdevice` of the device, which `nonseekable_open` left alone.
        let misc = unsafe { (*file).private_data }.cast::<bindings::miscdevice>();
        // SAFETY: that `miscdevice` is the `misc` field of a pinned
        // `FixedMinorMisc<T>` (its fops are this vtable, used by no other
        // type), registered for as long as the file can be open.
        let this = unsafe {
            &*misc
                .cast::<u8>()
                .sub(offset_of!(FixedMinorMisc<T>, misc))
                .cast::<FixedMinorMisc<T>>()
        };
        match this.ctx.ioctl(cmd, arg) {
            Ok(v) => v as c_long,
            Err(e) => e.to_errno() as c_long,
        }
    }
}
