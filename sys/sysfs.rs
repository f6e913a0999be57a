// SPDX-License-Identifier: GPL-2.0

//! Read-only sysfs attribute groups on the disks of a [`DiskOps`] driver,
//! such as `loop.c`'s `/sys/block/loopN/loop/` group, which exists exactly
//! while a loop device is bound ([`GenDisk::add_group`],
//! [`GenDisk::remove_group`]).
//!
//! [`disk_attr_group!`] defines the static group; [`DiskAttrs::show`]
//! formats one attribute into the sysfs page.
//!
//! [`GenDisk::add_group`]: super::disk::GenDisk::add_group
//! [`GenDisk::remove_group`]: super::disk::GenDisk::remove_group

use super::disk::DiskOps;
use core::fmt;
use kernel::{
    bindings,
    ffi::{c_char, c_void},
    prelude::*,
    str::CStr,
    sync::Arc,
    types::ForeignOwnable, //
};

/// The `show` side of a disk attribute group.
pub(crate) trait DiskAttrs: DiskOps {
    /// Formats the attribute `name` into `out`.
    fn show(&self, name: &CStr, out: &mut SysfsBuf<'_>) -> Result;
}

/// The page a sysfs `show` callback fills.
pub(crate) struct SysfsBuf<'a> {
    page: &'a mut [u8],
    len: usize,
}

impl SysfsBuf<'_> {
    /// Lets `f` fill the whole page directly (for `file_path()`, which
    /// wants a buffer); `f` returns how many bytes it wrote.
    pub(crate) fn fill(&mut self, f: impl FnOnce(&mut [u8]) -> Result<usize>) -> Result {
        let n = f(self.page)?;
        self.len = n.min(self.page.len());
        Ok(())
    }
}

impl fmt::Write for SysfsBuf<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Keep the last byte for a terminating NUL, as `sysfs_emit` does.
        let room = self.page.len() - 1 - self.len;
        let n = s.len().min(room);
        self.page[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        if n < s.len() {
            Err(fmt::Error)
        } else {
            Ok(())
        }
    }
}

/// A static attribute group; define one with [`disk_attr_group!`].
#[repr(transparent)]
pub(crate) struct Group(pub(crate) bindings::attribute_group);

// SAFETY: a group is immutable after its static initialization.
unsafe impl Sync for Group {}

impl Group {
    pub(crate) fn as_raw(&self) -> *const bindings::attribute_group {
        &self.0
    }
}

/// A static `device_attribute`.
#[repr(transparent)]
pub(crate) struct DevAttr(pub(crate) bindings::device_attribute);

// SAFETY: immutable after its static initialization.
unsafe impl Sync for DevAttr {}

/// A static NULL-terminated array of attribute pointers.
#[repr(transparent)]
pub(crate) struct AttrPtrs<const N: usize>(pub(crate) [*mut bindings::attribute; N]);

// SAFETY: immutable after its static initialization; the pointers point to
// immutable statics.
unsafe impl<const N: usize> Sync for AttrPtrs<N> {}

impl DevAttr {
    /// A read-only (0444) attribute named `name` shown by `T`.
    pub(crate) const fn new<T: DiskAttrs>(name: &'static CStr) -> Self {
        let mut a: bindings::device_attribute = pin_init::zeroed();
        a.attr.name = kernel::str::as_char_ptr_in_const_context(name);
        a.attr.mode = 0o444;
        a.__bindgen_anon_1.show = Some(show_trampoline::<T>);
        DevAttr(a)
    }
}

/// `device_attribute.show` for the disks of `T`.
///
/// # Safety
///
/// Called by sysfs for an attribute of a group created on the device of a
/// live, added disk of `T`, with `buf` a `PAGE_SIZE` page.
unsafe extern "C" fn show_trampoline<T: DiskAttrs>(
    dev: *mut bindings::device,
    attr: *mut bindings::device_attribute,
    buf: *mut c_char,
) -> isize {
    // SAFETY: `dev` is the `bd_device` of the disk's `part0` (the group is
    // created on `disk_to_dev()`), so `dev_to_disk()` applies.
    let disk = unsafe {
        let bdev = dev
            .cast::<u8>()
            .sub(core::mem::offset_of!(bindings::block_device, bd_device))
            .cast::<bindings::block_device>();
        (*bdev).bd_disk
    };
    // SAFETY: the private data of an added disk of `T` is its `Arc<T>`; the
    // disk outlives the group, which `sysfs_remove_group` drains.
    let this = unsafe { Arc::<T>::borrow((*disk).private_data.cast::<c_void>()) };
    // SAFETY: attribute names are static C strings.
    let name = unsafe { CStr::from_char_ptr((*attr).attr.name) };
    // SAFETY: sysfs hands us a page of `PAGE_SIZE` bytes for this call.
    let page = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), bindings::PAGE_SIZE) };
    let mut out = SysfsBuf { page, len: 0 };
    match this.show(name, &mut out) {
        Ok(()) => {
            let len = out.len;
            if len < out.page.len() {
                out.page[len] = 0;
            }
            len as isize
        }
        Err(e) => e.to_errno() as isize,
    }
}

/// Defines `static $name: Group`, an attribute group called `$group` with
/// the read-only attributes `$attr...`, shown by `<$t as DiskAttrs>::show`.
macro_rules! disk_attr_group {
    ($vis:vis $name:ident, $group:literal, $t:ty, [$($attr:ident),+ $(,)?]) => {
        $vis static $name: $crate::sys::sysfs::Group = {
            #[allow(non_upper_case_globals)]
            mod attrs {
                $(
                    pub(super) static $attr: $crate::sys::sysfs::DevAttr =
                        $crate::sys::sysfs::DevAttr::new::<$t>(
                            match ::kernel::str::CStr::from_bytes_with_nul(
                                concat!(stringify!($attr), "\0").as_bytes(),
                            ) {
                                Ok(s) => s,
                                Err(_) => panic!("bad attribute name"),
                            },
                        );
                )+
            }
            static PTRS: $crate::sys::sysfs::AttrPtrs<{ [$(stringify!($attr)),+].len() + 1 }> =
                $crate::sys::sysfs::AttrPtrs([
                    $(::core::ptr::addr_of!(attrs::$attr.0.attr).cast_mut(),)+
                    ::core::ptr::null_mut(),
                ]);
            $crate::sys::sysfs::Group(::kernel::bindings::attribute_group {
                name: match ::kernel::str::CStr::from_bytes_with_nul(concat!($group, "\0").as_bytes()) {
                    Ok(s) => ::kernel::str::as_char_ptr_in_const_context(s),
                    Err(_) => panic!("bad group name"),
                },
                __bindgen_anon_2: ::kernel::bindings::attribute_group__bindgen_ty_2 {
                    attrs: ::core::ptr::addr_of!(PTRS.0)
                        .cast::<*mut ::kernel::bindings::attribute>()
                        .cast_mut(),
                },
                ..::pin_init::zeroed()
            })
        };
    };
}
pub(crate) use disk_attr_group;
