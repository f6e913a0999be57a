// SPDX-License-Identifier: GPL-2.0

//! The backing file of a loop device: what the driver asks of it (size,
//! capabilities, direct-I/O alignment, fsync, fallocate, its path and
//! identity) over the raw `struct file`, which `kernel::fs::File` exposes
//! only as a reference-counted pointer.

use super::{disk::DiskOps, helpers};
use core::{mem::MaybeUninit, ptr};
use kernel::{
    bindings,
    error::to_result,
    ffi::c_char,
    fs::{File, LocalFile},
    prelude::*,
    sync::{aref::ARef, ArcBorrow}, //
};

/// `S_IFMT`, `S_IFREG`, `S_IFBLK`.
const S_IFMT: u32 = bindings::S_IFMT;
const S_IFREG: u32 = bindings::S_IFREG;
const S_IFBLK: u32 = bindings::S_IFBLK;

/// The kind of file behind a backing file descriptor.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A regular file.
    Regular,
    /// A block device.
    Block,
    /// Anything else (directory, character device, pipe, ...).
    Other,
}

/// The direct-I/O alignment a backing file asks for.
#[derive(Clone, Copy)]
pub(crate) struct DioAlign {
    /// Minimum file offset and length alignment (`lo_min_dio_size`).
    pub(crate) min_size: u32,
    /// Memory alignment mask (`lo_dio_mem_align`).
    pub(crate) mem_mask: u32,
}

/// `struct kstatfs` of `include/linux/statfs.h`, opaque to bindgen; its
/// size and the offset of `f_bsize` are checked against the kernel's in
/// `rust_loop_helpers.c`, against this structure here.
#[repr(C)]
struct KStatfs {
    f_type: i64,
    f_bsize: i64,
    rest: [u64; 13],
}

const _: () = assert!(core::mem::size_of::<KStatfs>() == helpers::layout::KSTATFS_SIZE);
const _: () =
    assert!(core::mem::offset_of!(KStatfs, f_bsize) == helpers::layout::KSTATFS_BSIZE_OFFSET);

/// A reference-counted open file used as a loop device's backing store.
///
/// # Invariants
///
/// `0` holds a reference on an open file, so that the file, its
/// `f_mapping` (and the mapping's `host`, the inode), `f_inode`, `f_op`
/// (static) and `f_path` stay valid and unchanged while this value lives.
#[derive(Clone)]
pub(crate) struct BackingFile(ARef<File>);

impl BackingFile {
    /// `fget(fd)` in an ioctl: `EBADF` if `fd` is not an open file.
    pub(crate) fn fget(fd: u32) -> Result<Self> {
        let f = LocalFile::fget(fd)?;
        // SAFETY: called from an ioctl, which does not hold an `fdget_pos`
        // of its own file position on this thread.
        Ok(Self(unsafe { LocalFile::assume_no_fdget_pos(f) }))
    }

    pub(crate) fn as_ptr(&self) -> *mut bindings::file {
        self.0.as_ptr()
    }

    fn inode(&self) -> *mut bindings::inode {
        // SAFETY: `f_mapping->host` of the open file (type invariant) is its inode (for a
        // block device file, the block device's inode), valid while open.
        unsafe { (*(*self.as_ptr()).f_mapping).host }
    }

    fn mode_bits(&self) -> u32 {
        // SAFETY: the inode of the open file (type invariant); `i_mode`'s type is constant.
        u32::from(unsafe { (*self.inode()).i_mode })
    }

    /// What kind of file this is (of its `f_mapping->host` inode).
    pub(crate) fn kind(&self) -> Kind {
        match self.mode_bits() & S_IFMT {
            S_IFREG => Kind::Regular,
            S_IFBLK => Kind::Block,
            _ => Kind::Other,
        }
    }

    fn f_op(&self) -> &bindings::file_operations {
        // SAFETY: the open file's `f_op` is valid and static (type invariant).
        unsafe { &*(*self.as_ptr()).f_op }
    }

    /// Opened for writing (`FMODE_WRITE`).
    pub(crate) fn writable(&self) -> bool {
        // SAFETY: `f_mode` of the open file (type invariant).
        (unsafe { (*self.as_ptr()).f_mode }) & helpers::FMODE_WRITE != 0
    }

    /// Supports direct I/O (`FMODE_CAN_ODIRECT`).
    pub(crate) fn can_odirect(&self) -> bool {
        // SAFETY: `f_mode` of the open file (type invariant).
        (unsafe { (*self.as_ptr()).f_mode }) & helpers::FMODE_CAN_ODIRECT != 0
    }

    /// Opened with `O_DIRECT`.
    pub(crate) fn o_direct(&self) -> bool {
        self.0.flags() & kernel::fs::file::flags::O_DIRECT != 0
    }

    /// Has `read_iter`.
    pub(crate) fn has_read_iter(&self) -> bool {
        self.f_op().read_iter.is_some()
    }

    /// Has `write_iter`.
    pub(crate) fn has_write_iter(&self) -> bool {
        self.f_op().write_iter.is_some()
    }

    /// Has `fsync`.
    pub(crate) fn has_fsync(&self) -> bool {
        self.f_op().fsync.is_some()
    }

    /// Has `fallocate`.
    pub(crate) fn has_fallocate(&self) -> bool {
        self.f_op().fallocate.is_some()
    }

    /// The `dev_t` of the block device this file is, if it is one.
    pub(crate) fn rdev(&self) -> Option<u32> {
        // SAFETY: the inode of the open file (type invariant); `i_rdev` is constant.
        (self.kind() == Kind::Block).then(|| unsafe { (*self.inode()).i_rdev })
    }

    /// The gendisk of the block device this file is, if it is one; it stays
    /// alive at least as long as this file is open.
    fn bdev_disk(&self) -> Option<*mut bindings::gendisk> {
        if self.kind() != Kind::Block {
            return None;
        }
        // SAFETY: a block device inode belongs to a `struct block_device`,
        // whose disk an open file of it pins.
        Some(unsafe { (*bindings::I_BDEV(self.inode())).bd_disk })
    }

    /// The driver state of the disk this file is a block device of, if it
    /// is a disk of `T`'s (a loop device stacked under another).
    pub(crate) fn disk_driver<T: DiskOps>(&self) -> Option<ArcBorrow<'_, T>> {
        let disk = self.bdev_disk()?;
        // SAFETY: the open file keeps its block device's disk alive for as
        // long as `&self` is borrowed.
        unsafe { super::disk::driver_of::<T>(disk) }
    }

    /// The size in bytes, as `lo_calculate_size()` reads it: `i_size` for a
    /// block device, an accurate `getattr` for a file (0 if that fails).
    pub(crate) fn size(&self) -> u64 {
        if self.kind() == Kind::Block {
            // SAFETY: `i_size` of a live inode; `i_size_read()` is a plain
            // read on 64-bit.
            return unsafe { ptr::read_volatile(ptr::addr_of!((*self.inode()).i_size)) }.max(0)
                as u64;
        }
        match self.getattr(bindings::STATX_SIZE, false) {
            Ok(st) => st.size.max(0) as u64,
            Err(_) => 0,
        }
    }

    fn path(&self) -> *const bindings::path {
        // SAFETY: `f_path` of the open file (type invariant).
        unsafe { ptr::addr_of!((*self.as_ptr()).__bindgen_anon_1.f_path) }
    }

    fn getattr(&self, mask: u32, with_security: bool) -> Result<bindings::kstat> {
        let mut st = MaybeUninit::<bindings::kstat>::zeroed();
        // SAFETY: the path of the open file (type invariant) and a writable `kstat`.
        let ret = unsafe {
            if with_security {
                bindings::vfs_getattr(
                    self.path(),
                    st.as_mut_ptr(),
                    mask,
                    bindings::AT_STATX_SYNC_AS_STAT,
                )
            } else {
                bindings::vfs_getattr_nosec(self.path(), st.as_mut_ptr(), mask, 0)
            }
        };
        to_result(ret)?;
        // SAFETY: zero-initialized, then filled in by `vfs_getattr`.
        Ok(unsafe { st.assume_init() })
    }

    /// `(dev, ino, rdev)` of the file, as `loop_get_status()` reports them.
    pub(crate) fn identity(&self) -> Result<(u32, u64, u32)> {
        let st = self.getattr(bindings::STATX_INO, true)?;
        Ok((st.dev, st.ino, st.rdev))
    }

    /// The direct-I/O alignment, as `loop_update_dio_alignment()` finds it:
    /// `STATX_DIOALIGN` if the file system reports it, else the limits of
    /// the file system's block device, else 512 bytes.
    pub(crate) fn dio_align(&self) -> DioAlign {
        if let Ok(st) = self.getattr(bindings::STATX_DIOALIGN, true) {
            if st.result_mask & bindings::STATX_DIOALIGN != 0 && st.dio_mem_align != 0 {
                return DioAlign {
                    min_size: st.dio_offset_align,
                    mem_mask: (st.dio_mem_align - 1).min(bindings::PAGE_SIZE as u32 - 1),
                };
            }
        }
        if let Some(q) = self.sb_bdev_queue() {
            // SAFETY: the queue of the mounted file system's block device.
            let lim = unsafe { &(*q).limits };
            return DioAlign {
                min_size: lim.logical_block_size,
                mem_mask: lim.dma_alignment,
            };
        }
        DioAlign {
            min_size: 512,
            mem_mask: 511,
        }
    }

    fn sb_bdev_queue(&self) -> Option<*mut bindings::request_queue> {
        // SAFETY: the inode's super block lives while the file is open; its
        // `s_bdev` (if any) too, and with it its queue.
        unsafe {
            let bdev = (*(*self.inode()).i_sb).s_bdev;
            (!bdev.is_null()).then(|| (*bdev).bd_queue)
        }
    }

    /// The queue of the block device under the file: the file itself if it
    /// is a block device, else its file system's, if any.
    fn under_queue(&self) -> Option<*mut bindings::request_queue> {
        if self.kind() == Kind::Block {
            // SAFETY: see `bdev_disk`.
            return Some(unsafe { (*bindings::I_BDEV(self.inode())).bd_queue });
        }
        self.sb_bdev_queue()
    }

    /// Whether the storage under the file is rotational.
    pub(crate) fn rotational(&self) -> bool {
        self.under_queue().is_some_and(|q| {
            // SAFETY: a valid queue (see `under_queue`).
            (unsafe { (*q).limits.features }) & bindings::BLK_FEAT_ROTATIONAL != 0
        })
    }

    /// `(max_discard_sectors, granularity)` as `loop_get_discard_config()`
    /// chooses them: a block device's write-zeroes limits, or punching holes
    /// in a file that can `fallocate`; `(0, 0)` otherwise.
    pub(crate) fn discard_config(&self) -> (u32, u32) {
        if self.kind() == Kind::Block {
            let Some(q) = self.under_queue() else {
                return (0, 0);
            };
            // SAFETY: a valid queue (see `under_queue`).
            let lim = unsafe { &(*q).limits };
            return (lim.max_write_zeroes_sectors, lim.discard_granularity);
        }
        if self.has_fallocate() {
            let mut sf = KStatfs {
                f_type: 0,
                f_bsize: 0,
                rest: [0; 13],
            };
            // SAFETY: the path of the open file (type invariant) and a writable `kstatfs`
            // (`KStatfs` mirrors its layout, checked by the C helper).
            if unsafe { bindings::vfs_statfs(self.path(), ptr::from_mut(&mut sf).cast()) } == 0 {
                return (u32::MAX >> 9, sf.f_bsize as u32);
            }
        }
        (0, 0)
    }

    /// `vfs_fsync(file, 0)`.
    pub(crate) fn fsync(&self) -> Result {
        // SAFETY: the open file (type invariant).
        to_result(unsafe { bindings::vfs_fsync(self.as_ptr(), 0) })
    }

    /// `f_op->fallocate(file, mode, pos, len)`.
    pub(crate) fn fallocate(&self, mode: i32, pos: u64, len: u64) -> Result {
        let Some(f) = self.f_op().fallocate else {
            return Err(EOPNOTSUPP);
        };
        // SAFETY: the open file (type invariant), whose `f_op` has `fallocate`.
        to_result(unsafe { f(self.as_ptr(), mode, pos as i64, len as i64) } as i32)
    }

    /// Writes the file's path into `buf` (`file_path()`), returning the
    /// range of `buf` that holds it.
    pub(crate) fn path_into(&self, buf: &mut [u8]) -> Result<core::ops::Range<usize>> {
        let len = buf.len().min(i32::MAX as usize) as i32;
        let base = buf.as_mut_ptr();
        // SAFETY: `buf` is writable for `len` bytes; `file_path` writes the
        // path at the end of it and returns where it starts, or an error.
        let p = unsafe { bindings::file_path(self.as_ptr(), base.cast::<c_char>(), len) };
        let p = kernel::error::from_err_ptr(p)?;
        // SAFETY: `p` points into `buf`, at a NUL-terminated string.
        let start = unsafe { p.cast::<u8>().offset_from(base) } as usize;
        let n = buf[start..]
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(buf.len() - start);
        Ok(start..start + n)
    }

    /// Clears `__GFP_IO` and `__GFP_FS` from the file's page cache
    /// allocations, so that writing back the file cannot recurse into the
    /// loop device; returns the previous mask for [`Self::restore_gfp`].
    pub(crate) fn limit_gfp(&self) -> u32 {
        // SAFETY: the mapping of the open file (type invariant); `mapping_gfp_mask()` and
        // `mapping_set_gfp_mask()` are plain accesses of `gfp_mask`.
        unsafe {
            let m = (*self.as_ptr()).f_mapping;
            let old = (*m).gfp_mask;
            (*m).gfp_mask = old & !(helpers::GFP_IO | helpers::GFP_FS);
            old
        }
    }

    /// Restores a page-cache allocation mask saved by [`Self::limit_gfp`].
    pub(crate) fn restore_gfp(&self, mask: u32) {
        // SAFETY: as in `limit_gfp`.
        unsafe { (*(*self.as_ptr()).f_mapping).gfp_mask = mask };
    }
}
