// SPDX-License-Identifier: GPL-2.0

//! The loop UAPI of `include/uapi/linux/loop.h` (and `compat_loop_info` of
//! `drivers/block/loop.c`): ioctl numbers, flags and the structures copied
//! to and from user space. `rust/uapi` does not include this header.
//!
//! The structures spell out every padding byte as a field, so that they can
//! be copied to user space as plain bytes without leaking kernel memory.
//! The old and compat `loop_info` convert to and from `loop_info64` as
//! `loop.c`'s `loop_info64_{from,to}_{old,compat}()` do (`From`,
//! `TryFrom`).

use super::helpers::layout;
use core::mem::{offset_of, size_of};
use kernel::{
    error::{code::EOVERFLOW, Error, Result},
    transmute::{
        AsBytes,
        FromBytes, //
    },
};

/// `LOOP_SET_FD`.
pub(crate) const LOOP_SET_FD: u32 = 0x4C00;
/// `LOOP_CLR_FD`.
pub(crate) const LOOP_CLR_FD: u32 = 0x4C01;
/// `LOOP_SET_STATUS`.
pub(crate) const LOOP_SET_STATUS: u32 = 0x4C02;
/// `LOOP_GET_STATUS`.
pub(crate) const LOOP_GET_STATUS: u32 = 0x4C03;
/// `LOOP_SET_STATUS64`.
pub(crate) const LOOP_SET_STATUS64: u32 = 0x4C04;
/// `LOOP_GET_STATUS64`.
pub(crate) const LOOP_GET_STATUS64: u32 = 0x4C05;
/// `LOOP_CHANGE_FD`.
pub(crate) const LOOP_CHANGE_FD: u32 = 0x4C06;
/// `LOOP_SET_CAPACITY`.
pub(crate) const LOOP_SET_CAPACITY: u32 = 0x4C07;
/// `LOOP_SET_DIRECT_IO`.
pub(crate) const LOOP_SET_DIRECT_IO: u32 = 0x4C08;
/// `LOOP_SET_BLOCK_SIZE`.
pub(crate) const LOOP_SET_BLOCK_SIZE: u32 = 0x4C09;
/// `LOOP_CONFIGURE`.
pub(crate) const LOOP_CONFIGURE: u32 = 0x4C0A;

/// `LOOP_CTL_ADD`.
pub(crate) const LOOP_CTL_ADD: u32 = 0x4C80;
/// `LOOP_CTL_REMOVE`.
pub(crate) const LOOP_CTL_REMOVE: u32 = 0x4C81;
/// `LOOP_CTL_GET_FREE`.
pub(crate) const LOOP_CTL_GET_FREE: u32 = 0x4C82;

/// `LO_FLAGS_READ_ONLY`.
pub(crate) const LO_FLAGS_READ_ONLY: u32 = 1;
/// `LO_FLAGS_AUTOCLEAR`.
pub(crate) const LO_FLAGS_AUTOCLEAR: u32 = 4;
/// `LO_FLAGS_PARTSCAN`.
pub(crate) const LO_FLAGS_PARTSCAN: u32 = 8;
/// `LO_FLAGS_DIRECT_IO`.
pub(crate) const LO_FLAGS_DIRECT_IO: u32 = 16;

/// `LOOP_SET_STATUS_SETTABLE_FLAGS`.
pub(crate) const LOOP_SET_STATUS_SETTABLE_FLAGS: u32 = LO_FLAGS_AUTOCLEAR | LO_FLAGS_PARTSCAN;
/// `LOOP_SET_STATUS_CLEARABLE_FLAGS`.
pub(crate) const LOOP_SET_STATUS_CLEARABLE_FLAGS: u32 = LO_FLAGS_AUTOCLEAR;
/// `LOOP_CONFIGURE_SETTABLE_FLAGS`.
pub(crate) const LOOP_CONFIGURE_SETTABLE_FLAGS: u32 =
    LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR | LO_FLAGS_PARTSCAN | LO_FLAGS_DIRECT_IO;

/// `LO_NAME_SIZE`.
pub(crate) const LO_NAME_SIZE: usize = 64;
/// `LO_KEY_SIZE`.
pub(crate) const LO_KEY_SIZE: usize = 32;

/// `LO_CRYPT_NONE`, the only transfer type still supported.
pub(crate) const LO_CRYPT_NONE: u32 = 0;
/// `LO_CRYPT_XOR`, removed.
pub(crate) const LO_CRYPT_XOR: u32 = 1;
/// `LO_CRYPT_CRYPTOAPI`, removed.
pub(crate) const LO_CRYPT_CRYPTOAPI: u32 = 18;

/// `struct loop_info64`.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct LoopInfo64 {
    pub(crate) lo_device: u64,
    pub(crate) lo_inode: u64,
    pub(crate) lo_rdevice: u64,
    pub(crate) lo_offset: u64,
    pub(crate) lo_sizelimit: u64,
    pub(crate) lo_number: u32,
    pub(crate) lo_encrypt_type: u32,
    pub(crate) lo_encrypt_key_size: u32,
    pub(crate) lo_flags: u32,
    pub(crate) lo_file_name: [u8; LO_NAME_SIZE],
    pub(crate) lo_crypt_name: [u8; LO_NAME_SIZE],
    pub(crate) lo_encrypt_key: [u8; LO_KEY_SIZE],
    pub(crate) lo_init: [u64; 2],
}

/// `struct loop_config`.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct LoopConfig {
    pub(crate) fd: u32,
    pub(crate) block_size: u32,
    pub(crate) info: LoopInfo64,
    pub(crate) reserved: [u64; 8],
}

/// `struct loop_info`, the old 32-bit-dev structure, as laid out on a 64-bit
/// kernel (`__kernel_old_dev_t` and `unsigned long` are 64 bits wide).
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct LoopInfo {
    pub(crate) lo_number: i32,
    pub(crate) pad0: [u8; 4],
    pub(crate) lo_device: u64,
    pub(crate) lo_inode: u64,
    pub(crate) lo_rdevice: u64,
    pub(crate) lo_offset: i32,
    pub(crate) lo_encrypt_type: i32,
    pub(crate) lo_encrypt_key_size: i32,
    pub(crate) lo_flags: i32,
    pub(crate) lo_name: [u8; LO_NAME_SIZE],
    pub(crate) lo_encrypt_key: [u8; LO_KEY_SIZE],
    pub(crate) lo_init: [u64; 2],
    pub(crate) reserved: [u8; 4],
    pub(crate) pad1: [u8; 4],
}

/// `struct compat_loop_info` of `loop.c`: `struct loop_info` as 32-bit user
/// space lays it out (`compat_dev_t` is 16 bits, `compat_ulong_t` 32).
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct CompatLoopInfo {
    pub(crate) lo_number: i32,
    pub(crate) lo_device: u16,
    pub(crate) pad0: [u8; 2],
    pub(crate) lo_inode: u32,
    pub(crate) lo_rdevice: u16,
    pub(crate) pad1: [u8; 2],
    pub(crate) lo_offset: i32,
    pub(crate) lo_encrypt_type: i32,
    pub(crate) lo_encrypt_key_size: i32,
    pub(crate) lo_flags: i32,
    pub(crate) lo_name: [u8; LO_NAME_SIZE],
    pub(crate) lo_encrypt_key: [u8; LO_KEY_SIZE],
    pub(crate) lo_init: [u32; 2],
    pub(crate) reserved: [u8; 4],
}

// The layouts above are those of x86-64 (and of 32-bit x86 user space for
// `CompatLoopInfo`). `rust_loop_helpers.c` checks the same sizes and
// offsets against the kernel's own structures, so on an architecture with
// other layouts the module fails to build.
const _: () = {
    assert!(size_of::<LoopInfo>() == layout::LOOP_INFO_SIZE);
    assert!(offset_of!(LoopInfo, lo_number) == layout::LOOP_INFO_OFF_LO_NUMBER);
    assert!(offset_of!(LoopInfo, lo_device) == layout::LOOP_INFO_OFF_LO_DEVICE);
    assert!(offset_of!(LoopInfo, lo_inode) == layout::LOOP_INFO_OFF_LO_INODE);
    assert!(offset_of!(LoopInfo, lo_rdevice) == layout::LOOP_INFO_OFF_LO_RDEVICE);
    assert!(offset_of!(LoopInfo, lo_offset) == layout::LOOP_INFO_OFF_LO_OFFSET);
    assert!(offset_of!(LoopInfo, lo_encrypt_type) == layout::LOOP_INFO_OFF_LO_ENCRYPT_TYPE);
    assert!(offset_of!(LoopInfo, lo_encrypt_key_size) == layout::LOOP_INFO_OFF_LO_ENCRYPT_KEY_SIZE);
    assert!(offset_of!(LoopInfo, lo_flags) == layout::LOOP_INFO_OFF_LO_FLAGS);
    assert!(offset_of!(LoopInfo, lo_name) == layout::LOOP_INFO_OFF_LO_NAME);
    assert!(offset_of!(LoopInfo, lo_encrypt_key) == layout::LOOP_INFO_OFF_LO_ENCRYPT_KEY);
    assert!(offset_of!(LoopInfo, lo_init) == layout::LOOP_INFO_OFF_LO_INIT);
    assert!(offset_of!(LoopInfo, reserved) == layout::LOOP_INFO_OFF_RESERVED);
    assert!(size_of::<LoopInfo64>() == layout::LOOP_INFO64_SIZE);
    assert!(offset_of!(LoopInfo64, lo_device) == layout::LOOP_INFO64_OFF_LO_DEVICE);
    assert!(offset_of!(LoopInfo64, lo_inode) == layout::LOOP_INFO64_OFF_LO_INODE);
    assert!(offset_of!(LoopInfo64, lo_rdevice) == layout::LOOP_INFO64_OFF_LO_RDEVICE);
    assert!(offset_of!(LoopInfo64, lo_offset) == layout::LOOP_INFO64_OFF_LO_OFFSET);
    assert!(offset_of!(LoopInfo64, lo_sizelimit) == layout::LOOP_INFO64_OFF_LO_SIZELIMIT);
    assert!(offset_of!(LoopInfo64, lo_number) == layout::LOOP_INFO64_OFF_LO_NUMBER);
    assert!(offset_of!(LoopInfo64, lo_encrypt_type) == layout::LOOP_INFO64_OFF_LO_ENCRYPT_TYPE);
    assert!(
        offset_of!(LoopInfo64, lo_encrypt_key_size) == layout::LOOP_INFO64_OFF_LO_ENCRYPT_KEY_SIZE
    );
    assert!(offset_of!(LoopInfo64, lo_flags) == layout::LOOP_INFO64_OFF_LO_FLAGS);
    assert!(offset_of!(LoopInfo64, lo_file_name) == layout::LOOP_INFO64_OFF_LO_FILE_NAME);
    assert!(offset_of!(LoopInfo64, lo_crypt_name) == layout::LOOP_INFO64_OFF_LO_CRYPT_NAME);
    assert!(offset_of!(LoopInfo64, lo_encrypt_key) == layout::LOOP_INFO64_OFF_LO_ENCRYPT_KEY);
    assert!(offset_of!(LoopInfo64, lo_init) == layout::LOOP_INFO64_OFF_LO_INIT);
    assert!(size_of::<LoopConfig>() == layout::LOOP_CONFIG_SIZE);
    assert!(offset_of!(LoopConfig, fd) == layout::LOOP_CONFIG_OFF_FD);
    assert!(offset_of!(LoopConfig, block_size) == layout::LOOP_CONFIG_OFF_BLOCK_SIZE);
    assert!(offset_of!(LoopConfig, info) == layout::LOOP_CONFIG_OFF_INFO);
    assert!(offset_of!(LoopConfig, reserved) == layout::LOOP_CONFIG_OFF_RESERVED);
    assert!(size_of::<CompatLoopInfo>() == layout::COMPAT_LOOP_INFO_SIZE);
    assert!(offset_of!(CompatLoopInfo, lo_number) == layout::COMPAT_LOOP_INFO_OFF_LO_NUMBER);
    assert!(offset_of!(CompatLoopInfo, lo_device) == layout::COMPAT_LOOP_INFO_OFF_LO_DEVICE);
    assert!(offset_of!(CompatLoopInfo, lo_inode) == layout::COMPAT_LOOP_INFO_OFF_LO_INODE);
    assert!(offset_of!(CompatLoopInfo, lo_rdevice) == layout::COMPAT_LOOP_INFO_OFF_LO_RDEVICE);
    assert!(offset_of!(CompatLoopInfo, lo_offset) == layout::COMPAT_LOOP_INFO_OFF_LO_OFFSET);
    assert!(
        offset_of!(CompatLoopInfo, lo_encrypt_type) == layout::COMPAT_LOOP_INFO_OFF_LO_ENCRYPT_TYPE
    );
    assert!(
        offset_of!(CompatLoopInfo, lo_encrypt_key_size)
            == layout::COMPAT_LOOP_INFO_OFF_LO_ENCRYPT_KEY_SIZE
    );
    assert!(offset_of!(CompatLoopInfo, lo_flags) == layout::COMPAT_LOOP_INFO_OFF_LO_FLAGS);
    assert!(offset_of!(CompatLoopInfo, lo_name) == layout::COMPAT_LOOP_INFO_OFF_LO_NAME);
    assert!(
        offset_of!(CompatLoopInfo, lo_encrypt_key) == layout::COMPAT_LOOP_INFO_OFF_LO_ENCRYPT_KEY
    );
    assert!(offset_of!(CompatLoopInfo, lo_init) == layout::COMPAT_LOOP_INFO_OFF_LO_INIT);
    assert!(offset_of!(CompatLoopInfo, reserved) == layout::COMPAT_LOOP_INFO_OFF_RESERVED);
};

macro_rules! plain_data {
    ($($t:ty),*) => {$(
        impl $t {
            /// An all-zero instance.
            pub(crate) fn zeroed() -> Self {
                // SAFETY: the type is plain integers and byte arrays, for
                // which all-zero bytes are a valid value.
                unsafe { core::mem::zeroed() }
            }
        }

        // SAFETY: the type is `repr(C)` and made of integers and byte
        // arrays only, so every bit pattern is a valid value.
        unsafe impl FromBytes for $t {}

        // SAFETY: the type is `repr(C)`, made of integers and byte arrays,
        // and every padding byte is a named field (checked by the size
        // assertions above), so all of its bytes are initialized.
        unsafe impl AsBytes for $t {}
    )*};
}

plain_data!(LoopInfo64, LoopConfig, LoopInfo, CompatLoopInfo);

/// `loop_info64_from_old()`.
impl From<&LoopInfo> for LoopInfo64 {
    fn from(old: &LoopInfo) -> Self {
        let mut info = LoopInfo64::zeroed();
        info.lo_number = old.lo_number as u32;
        info.lo_device = old.lo_device;
        info.lo_inode = old.lo_inode;
        info.lo_rdevice = old.lo_rdevice;
        info.lo_offset = i64::from(old.lo_offset) as u64;
        info.lo_flags = old.lo_flags as u32;
        info.lo_file_name = old.lo_name;
        info
    }
}

/// `loop_info64_to_old()`: `EOVERFLOW` when a value does not fit.
impl TryFrom<&LoopInfo64> for LoopInfo {
    type Error = Error;

    fn try_from(info: &LoopInfo64) -> Result<Self> {
        let mut old = LoopInfo::zeroed();
        old.lo_number = info.lo_number as i32;
        old.lo_device = info.lo_device;
        old.lo_inode = info.lo_inode;
        old.lo_rdevice = info.lo_rdevice;
        old.lo_offset = info.lo_offset as i32;
        old.lo_flags = info.lo_flags as i32;
        old.lo_name = info.lo_file_name;
        if i64::from(old.lo_offset) as u64 != info.lo_offset {
            return Err(EOVERFLOW);
        }
        Ok(old)
    }
}

/// `loop_info64_from_compat()`.
impl From<&CompatLoopInfo> for LoopInfo64 {
    fn from(c: &CompatLoopInfo) -> Self {
        let mut info = LoopInfo64::zeroed();
        info.lo_number = c.lo_number as u32;
        info.lo_device = u64::from(c.lo_device);
        info.lo_inode = u64::from(c.lo_inode);
        info.lo_rdevice = u64::from(c.lo_rdevice);
        info.lo_offset = i64::from(c.lo_offset) as u64;
        info.lo_flags = c.lo_flags as u32;
        info.lo_file_name = c.lo_name;
        info
    }
}

/// `loop_info64_to_compat()`: `EOVERFLOW` when a value does not fit.
impl TryFrom<&LoopInfo64> for CompatLoopInfo {
    type Error = Error;

    fn try_from(info: &LoopInfo64) -> Result<Self> {
        let mut c = CompatLoopInfo::zeroed();
        c.lo_number = info.lo_number as i32;
        c.lo_device = info.lo_device as u16;
        c.lo_inode = info.lo_inode as u32;
        c.lo_rdevice = info.lo_rdevice as u16;
        c.lo_offset = info.lo_offset as i32;
        c.lo_flags = info.lo_flags as i32;
        c.lo_name = info.lo_file_name;
        if u64::from(c.lo_device) != info.lo_device
            || u64::from(c.lo_rdevice) != info.lo_rdevice
            || u64::from(c.lo_inode) != info.lo_inode
            || i64::from(c.lo_offset) as u64 != info.lo_offset
        {
            return Err(EOVERFLOW);
        }
        Ok(c)
    }
}
