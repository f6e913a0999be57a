// SPDX-License-Identifier: GPL-2.0

//! The ioctls of a loop device, as `loop.c`'s `lo_ioctl()` and
//! `lo_compat_ioctl()` answer them: the dispatch and its permission checks,
//! the copies from and to user space, the checks of a `loop_info64`, the
//! old and compat `loop_info` conversions, and the handlers that change a
//! bound device (status, capacity, direct I/O, block size, backing file).
//! Binding and unbinding (`LOOP_SET_FD`, `LOOP_CONFIGURE`, `LOOP_CLR_FD`)
//! are transitions of the state machine, in `rust_loop_dev.rs`.

use crate::{
    rust_loop_dev::LoopDevice,
    rust_loop_shared::MINORBITS,
    rust_loop_state::{calculate_size, Config, LoState},
    sys::{
        self,
        disk::{BlockDevice, ClaimHolder, GenDisk, OpenMode},
        file::BackingFile,
        sync::LockKillable,
        uapi::{self, CompatLoopInfo, LoopConfig, LoopInfo, LoopInfo64},
    },
};
use kernel::{
    prelude::*,
    uaccess::{UserPtr, UserSlice},
};

static BLOCK_SIZE_HOLDER: ClaimHolder = ClaimHolder::new();

/// `lo_ioctl()`.
pub(crate) fn ioctl(
    lo: &LoopDevice,
    bdev: &BlockDevice,
    mode: OpenMode,
    cmd: u32,
    arg: usize,
) -> Result<i32> {
    let may_write = || mode.write() || sys::capable_sys_admin();
    let disk = bdev.disk();
    let user = |len| UserSlice::new(UserPtr::from_addr(arg), len);
    match cmd {
        uapi::LOOP_SET_FD => {
            // The legacy ioctl: a zeroed loop_config with only the fd.
            let mut config = LoopConfig::zeroed();
            config.fd = arg as u32;
            lo.configure(bdev, mode, &config)?;
        }
        uapi::LOOP_CONFIGURE => {
            let config: LoopConfig = user(size_of::<LoopConfig>()).reader().read()?;
            lo.configure(bdev, mode, &config)?;
        }
        uapi::LOOP_CHANGE_FD => change_fd(lo, bdev, arg as u32)?,
        uapi::LOOP_CLR_FD => lo.clr_fd(disk)?,
        uapi::LOOP_SET_STATUS => {
            if !may_write() {
                return Err(EPERM);
            }
            let old: LoopInfo = user(size_of::<LoopInfo>()).reader().read()?;
            set_status(lo, bdev, &LoopInfo64::from(&old))?;
        }
        uapi::LOOP_GET_STATUS => {
            if arg == 0 {
                return Err(EINVAL);
            }
            let old = LoopInfo::try_from(&get_status(lo)?)?;
            user(size_of::<LoopInfo>()).writer().write(&old)?;
        }
        uapi::LOOP_SET_STATUS64 => {
            if !may_write() {
                return Err(EPERM);
            }
            let info: LoopInfo64 = user(size_of::<LoopInfo64>()).reader().read()?;
            set_status(lo, bdev, &info)?;
        }
        uapi::LOOP_GET_STATUS64 => {
            if arg == 0 {
                return Err(EINVAL);
            }
            let info = get_status(lo)?;
            user(size_of::<LoopInfo64>()).writer().write(&info)?;
        }
        uapi::LOOP_SET_BLOCK_SIZE => {
            if !may_write() {
                return Err(EPERM);
            }
            set_block_size(lo, bdev, mode, arg)?;
        }
        uapi::LOOP_SET_CAPACITY => {
            if !may_write() {
                return Err(EPERM);
            }
            set_capacity(lo, disk)?;
        }
        uapi::LOOP_SET_DIRECT_IO => {
            if !may_write() {
                return Err(EPERM);
            }
            set_dio(lo, disk, arg)?;
        }
        // lo_simple_ioctl() answers anything else with EINVAL, under
        // lo_mutex.
        _ => {
            let _lo = lo.st.lock_killable()?;
            return Err(EINVAL);
        }
    }
    Ok(0)
}

/// `lo_compat_ioctl()`: the old status structure in its 32-bit layout;
/// pointer arguments are already zero-extended on x86-64.
pub(crate) fn compat_ioctl(
    lo: &LoopDevice,
    bdev: &BlockDevice,
    mode: OpenMode,
    cmd: u32,
    arg: usize,
) -> Result<i32> {
    let user = |len| UserSlice::new(UserPtr::from_addr(arg), len);
    match cmd {
        uapi::LOOP_SET_STATUS => {
            if !(mode.write() || sys::capable_sys_admin()) {
                return Err(EPERM);
            }
            let c: CompatLoopInfo = user(size_of::<CompatLoopInfo>()).reader().read()?;
            set_status(lo, bdev, &LoopInfo64::from(&c))?;
            Ok(0)
        }
        uapi::LOOP_GET_STATUS => {
            if arg == 0 {
                return Err(EINVAL);
            }
            let c = CompatLoopInfo::try_from(&get_status(lo)?)?;
            user(size_of::<CompatLoopInfo>()).writer().write(&c)?;
            Ok(0)
        }
        uapi::LOOP_SET_CAPACITY
        | uapi::LOOP_CLR_FD
        | uapi::LOOP_GET_STATUS64
        | uapi::LOOP_SET_STATUS64
        | uapi::LOOP_CONFIGURE
        | uapi::LOOP_SET_FD
        | uapi::LOOP_CHANGE_FD
        | uapi::LOOP_SET_BLOCK_SIZE
        | uapi::LOOP_SET_DIRECT_IO => ioctl(lo, bdev, mode, cmd, arg),
        _ => Err(ENOIOCTLCMD),
    }
}

/// The part of a `loop_info64` that `LOOP_SET_STATUS*` and
/// `LOOP_CONFIGURE` take over, once checked.
pub(crate) struct StatusUpdate {
    offset: u64,
    sizelimit: u64,
    file_name: [u8; uapi::LO_NAME_SIZE],
}

impl StatusUpdate {
    /// Sets the offset, the size limit and the name of `cfg`.
    pub(crate) fn apply(self, cfg: &mut Config) {
        cfg.offset = self.offset;
        cfg.sizelimit = self.sizelimit;
        cfg.file_name = self.file_name;
    }
}

/// The checks of `loop_set_status_from_info()`; the update applies the
/// offset, size limit and file name of `info`.
impl TryFrom<&LoopInfo64> for StatusUpdate {
    type Error = Error;

    fn try_from(info: &LoopInfo64) -> Result<Self> {
        if info.lo_encrypt_key_size as usize > uapi::LO_KEY_SIZE {
            return Err(EINVAL);
        }
        match info.lo_encrypt_type {
            uapi::LO_CRYPT_NONE => {}
            uapi::LO_CRYPT_XOR => {
                pr_warn!("support for the xor transformation has been removed.\n");
                return Err(EINVAL);
            }
            uapi::LO_CRYPT_CRYPTOAPI => {
                pr_warn!("support for cryptoloop has been removed.  Use dm-crypt instead.\n");
                return Err(EINVAL);
            }
            _ => return Err(EINVAL),
        }
        if info.lo_offset > i64::MAX as u64 || info.lo_sizelimit > i64::MAX as u64 {
            return Err(EOVERFLOW);
        }
        let mut file_name = info.lo_file_name;
        file_name[uapi::LO_NAME_SIZE - 1] = 0;
        Ok(StatusUpdate {
            offset: info.lo_offset,
            sizelimit: info.lo_sizelimit,
            file_name,
        })
    }
}

/// `huge_encode_dev()`: a kernel `dev_t` in the 64-bit user encoding.
fn huge_encode_dev(dev: u32) -> u64 {
    let major = u64::from(dev >> MINORBITS);
    let minor = u64::from(dev & ((1 << MINORBITS) - 1));
    (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12)
}

/// `loop_get_status()`.
fn get_status(lo: &LoopDevice) -> Result<LoopInfo64> {
    let (mut info, file) = {
        let cfg = lo.lock_in(LoState::Bound, ENXIO)?;
        let mut info = LoopInfo64::zeroed();
        info.lo_number = lo.number;
        info.lo_offset = cfg.offset;
        info.lo_sizelimit = cfg.sizelimit;
        info.lo_flags = cfg.flags;
        info.lo_file_name = cfg.file_name;
        (info, cfg.file.clone().ok_or(ENXIO)?)
    };
    // Call into the file system without lo_mutex.
    let (dev, ino, rdev) = file.identity()?;
    info.lo_device = huge_encode_dev(dev);
    info.lo_inode = ino;
    info.lo_rdevice = huge_encode_dev(rdev);
    Ok(info)
}

/// `loop_set_status()`.
fn set_status(lo: &LoopDevice, bdev: &BlockDevice, info: &LoopInfo64) -> Result {
    let disk = bdev.disk();
    let mut cfg = lo.lock_in(LoState::Bound, ENXIO)?;
    let size_changed = cfg.offset != info.lo_offset || cfg.sizelimit != info.lo_sizelimit;
    if size_changed {
        disk.sync_and_invalidate();
    }
    let partscan = {
        // I/O drains before the offset or the size limit change.
        let mut io = lo.disk.freeze_io(disk)?;
        cfg.update_frozen(&mut io, |cfg, queue| {
            StatusUpdate::try_from(info)?.apply(cfg);
            let partscan = cfg.flags & uapi::LO_FLAGS_PARTSCAN == 0
                && info.lo_flags & uapi::LO_FLAGS_PARTSCAN != 0;
            cfg.flags &= !uapi::LOOP_SET_STATUS_CLEARABLE_FLAGS;
            cfg.flags |= info.lo_flags & uapi::LOOP_SET_STATUS_SETTABLE_FLAGS;
            // The offset may have made direct I/O impossible.
            cfg.update_dio(queue.logical_block_size());
            Ok(partscan)
        })?
    };
    if partscan {
        disk.set_suppress_part_scan(false);
    }
    if size_changed {
        cfg.set_size(disk);
    }
    cfg.commit();
    let file_name = cfg.file_name;
    drop(cfg);
    if partscan {
        lo.reread_partitions(bdev, &file_name);
    }
    Ok(())
}

/// `loop_set_capacity()`.
fn set_capacity(lo: &LoopDevice, disk: &GenDisk) -> Result {
    let cfg = lo.lock_in(LoState::Bound, ENXIO)?;
    cfg.set_size(disk);
    Ok(())
}

/// `loop_set_dio()`.
fn set_dio(lo: &LoopDevice, disk: &GenDisk, arg: usize) -> Result {
    let mut cfg = lo.lock_in(LoState::Bound, ENXIO)?;
    let use_dio = arg != 0;
    if use_dio == (cfg.flags & uapi::LO_FLAGS_DIRECT_IO != 0) {
        return Ok(());
    }
    let file = cfg.file.clone().ok_or(ENXIO)?;
    if use_dio {
        if !cfg.can_use_dio(&file, disk.queue().logical_block_size()) {
            return Err(EINVAL);
        }
        // Write back the page cache before starting direct I/O.
        let _ = file.fsync();
    }
    let flags = if use_dio {
        cfg.flags | uapi::LO_FLAGS_DIRECT_IO
    } else {
        cfg.flags & !uapi::LO_FLAGS_DIRECT_IO
    };
    let (ret, mut io) = lo
        .disk
        .update_limits_frozen(disk, |lim| cfg.set_dma_limit(flags, lim))?;
    // Limits the queue refused leave the old ones, so the mode stays the
    // old one too. (loop.c ignores the commit's result and switches.)
    ret?;
    cfg.update_frozen(&mut io, |cfg, _| {
        cfg.flags = flags;
        Ok(())
    })?;
    drop(io);
    cfg.commit();
    Ok(())
}

/// `loop_set_block_size()`.
fn set_block_size(lo: &LoopDevice, bdev: &BlockDevice, mode: OpenMode, arg: usize) -> Result {
    let _claim = if mode.exclusive() {
        None
    } else {
        Some(bdev.prepare_to_claim(&BLOCK_SIZE_HOLDER)?)
    };
    let disk = bdev.disk();
    let mut cfg = lo.lock_in(LoState::Bound, ENXIO)?;
    if disk.queue().logical_block_size() as usize == arg {
        return Ok(());
    }
    let file = cfg.file.clone().ok_or(ENXIO)?;
    disk.sync_and_invalidate();
    // loop_update_limits() takes an unsigned int: loop.c truncates the
    // argument (2^32 | 4096 sets 4096; 2^32 is 0, the default).
    let bsize = arg as u32;
    let (ret, mut io) = lo
        .disk
        .update_limits_frozen(disk, |lim| cfg.update_limits(&file, lim, bsize))?;
    cfg.update_frozen(&mut io, |cfg, queue| {
        cfg.update_dio(queue.logical_block_size());
        Ok(())
    })?;
    drop(io);
    cfg.commit();
    ret
}

/// `loop_change_fd()`: swaps the backing file of a read-only device for
/// one of the same size.
fn change_fd(lo: &LoopDevice, bdev: &BlockDevice, fd: u32) -> Result {
    let file = BackingFile::fget(fd)?;
    LoopDevice::check_backing_file(&file)?;
    let disk = bdev.disk();
    disk.set_uevent_suppress(true);
    let ret = do_change_fd(lo, bdev, file);
    disk.set_uevent_suppress(false);
    // As loop_change_fd(): the partitions are rescanned once uevents are
    // on again, so that udev sees them removed *and* added back.
    if let Ok(Some(file_name)) = &ret {
        lo.reread_partitions(bdev, file_name);
    }
    disk.uevent_change();
    ret.map(|_| ())
}

/// The change itself, with the disk's uevents suppressed; returns the
/// `lo_file_name` when the partitions are to be rescanned.
fn do_change_fd(
    lo: &LoopDevice,
    bdev: &BlockDevice,
    file: BackingFile,
) -> Result<Option<[u8; uapi::LO_NAME_SIZE]>> {
    let disk = bdev.disk();
    let is_loop = LoopDevice::is_loop_device(&file);
    let validate = is_loop
        .then(|| lo.shared.validate.lock_killable())
        .transpose()?;
    let mut cfg = lo.lock_in(LoState::Bound, ENXIO)?;
    if cfg.flags & uapi::LO_FLAGS_READ_ONLY == 0 {
        return Err(EINVAL);
    }
    LoopDevice::validate_file(&file, bdev)?;
    let old = cfg.file.clone().ok_or(ENXIO)?;
    if calculate_size(&file, cfg.offset, cfg.sizelimit)
        != calculate_size(&old, cfg.offset, cfg.sizelimit)
    {
        return Err(EINVAL);
    }
    // Direct I/O may start now: write back the page cache first.
    let _ = file.fsync();
    disk.force_media_change();
    {
        let mut io = lo.disk.freeze_io(disk)?;
        cfg.update_frozen(&mut io, |cfg, queue| {
            old.restore_gfp(cfg.old_gfp);
            cfg.assign_backing_file(file);
            cfg.update_dio(queue.logical_block_size());
            Ok(())
        })?;
    }
    cfg.commit();
    let partscan = cfg.flags & uapi::LO_FLAGS_PARTSCAN != 0;
    let file_name = cfg.file_name;
    drop(cfg);
    drop(validate);
    // Wait for chain checks that may still look at the old file.
    if !is_loop {
        drop(lo.shared.validate.lock());
    }
    drop(old);
    Ok(partscan.then_some(file_name))
}
