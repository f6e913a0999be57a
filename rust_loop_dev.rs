// SPDX-License-Identifier: GPL-2.0

//! One loop device, `/dev/loopN`: a gendisk at block major 7 with its
//! state ([`DevState`]) and request counters, the block device callbacks
//! (open, release, ioctl, the request path), and the transitions of its
//! state machine that follow `drivers/block/loop.c`: binding a backing file
//! (`loop_configure()`), marking it for detaching (`loop_clr_fd()`), the
//! detach at the last close (`__loop_clr_fd()`) and the `LOOP_CTL_REMOVE`
//! check. The other ioctls are in `rust_loop_ioctl.rs`; the devices are
//! created, indexed and removed by the registry (`rust_loop_ctl.rs`).

use crate::{
    rust_loop_io::{self, Stats},
    rust_loop_ioctl::{self, StatusUpdate},
    rust_loop_shared::{Shared, LOOP_MAJOR, MINORBITS},
    rust_loop_state::{Config, DevState, Io, LoState, Locked},
    sys::{
        debugfs::File,
        disk::{
            BlockDevice, ClaimHolder, Disk, DiskOps, DiskParams, DiskVtable, GenDisk, OpenMode,
            ReleasingDisk,
        },
        file::{BackingFile, Kind},
        request::Request,
        sync::LockKillable,
        sysfs::{disk_attr_group, DiskAttrs, SysfsBuf},
        uapi::{self, LoopConfig},
        worker::RequestWorker,
        ModuleRef,
    },
};
use kernel::{
    block::SECTOR_SIZE,
    prelude::*,
    str::{BStr, CStr, CString},
    sync::Arc,
};

/// `max_hw_sectors` of a new loop device, as `loop_add()` sets it.
const LOOP_MAX_HW_SECTORS: u32 = 2560;

static CONFIGURE_HOLDER: ClaimHolder = ClaimHolder::new();

/// One loop device: `/dev/loopN`.
#[pin_data]
pub(crate) struct LoopDevice {
    /// `N`.
    pub(crate) number: u32,
    /// The configuration, its sysfs view and `lo_state`.
    #[pin]
    pub(crate) st: DevState,
    /// Request counters, in `/sys/kernel/debug/rust_loop/loopN`: a file,
    /// not a directory, which would cost another dentry and inode per
    /// device. Taken out of debugfs when the device is removed
    /// ([`Self::unpublish`]), not when the last reference goes, so that a
    /// new device of the same index can show its own.
    #[pin]
    stats: File<Stats>,
    /// `lo->workqueue` and its workers: where requests go to reach the
    /// backing file (see `rust_loop_io.rs`). One per device, as `loop.c`
    /// has, so that a device whose backing store hangs, or one stacked on
    /// another, cannot take the work slots other devices need. Declared
    /// before `disk`: dropping it waits for work items still returning
    /// from the request path before the tag set that held their requests
    /// is freed.
    #[pin]
    worker: RequestWorker<LoopDevice>,
    /// The gendisk, its tag set and the request path's snapshot.
    #[pin]
    pub(crate) disk: Disk<LoopDevice>,
    /// Last: it holds the debugfs directory of `stats`, which must go
    /// first.
    pub(crate) shared: Arc<Shared>,
}

impl LoopDevice {
    /// A new, unbound `loop<index>`, not yet added to the system.
    pub(crate) fn new(index: u32, shared: &Arc<Shared>) -> Result<Arc<Self>> {
        let part_shift = shared.part_shift;
        let params = DiskParams {
            major: LOOP_MAJOR,
            // `i << part_shift` in loop.c's int arithmetic; add_disk()
            // rejects what does not fit.
            first_minor: (index as i32).wrapping_shl(part_shift) as u32,
            minors: 1 << part_shift,
            nr_hw_queues: shared.nr_hw_queues,
            queue_depth: shared.queue_depth,
            max_hw_sectors: LOOP_MAX_HW_SECTORS,
            suppress_part_scan: part_shift == 0,
        };
        let name = CString::try_from_fmt(fmt!("loop{}", index))?;
        Arc::pin_init(
            try_pin_init!(LoopDevice {
                number: index,
                st <- DevState::new(),
                stats <- shared.debugfs.read_only_file(&name, Stats::new()),
                worker <- RequestWorker::new(),
                disk <- Disk::new(params, fmt!("loop{}", index), Io::unbound()),
                shared: shared.clone(),
            }),
            GFP_KERNEL,
        )
    }

    /// `lo_state`, read without `lo_mutex`.
    #[inline]
    pub(crate) fn state(&self) -> LoState {
        self.st.state()
    }

    /// Whether `LOOP_CTL_GET_FREE` may hand the device out: unbound
    /// (`lo_state == Lo_unbound`), read without `lo_mutex` as `loop.c`
    /// reads it there.
    pub(crate) fn is_free(&self) -> bool {
        self.state() == LoState::Unbound
    }

    /// The request counters.
    pub(crate) fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Takes the device's files out of debugfs, when it is removed.
    pub(crate) fn unpublish(&self) {
        self.stats.remove();
    }

    /// The device's worker, for requests that may block.
    pub(crate) fn worker(&self) -> &RequestWorker<LoopDevice> {
        &self.worker
    }

    /// The `LOOP_CTL_REMOVE` check: an unbound device nobody has open
    /// becomes `Deleting`; anything else is busy.
    pub(crate) fn mark_deleting(&self) -> Result {
        let mut cfg = self.st.lock_killable()?;
        if cfg.state() != LoState::Unbound || self.disk.openers() > 0 {
            return Err(EBUSY);
        }
        cfg.delete();
        Ok(())
    }

    /// `loop_check_backing_file()`.
    pub(crate) fn check_backing_file(file: &BackingFile) -> Result {
        if !file.has_read_iter() || (file.writable() && !file.has_write_iter()) {
            return Err(EINVAL);
        }
        Ok(())
    }

    /// Whether `file` is a loop device (`is_loop_device()`).
    pub(crate) fn is_loop_device(file: &BackingFile) -> bool {
        file.rdev().is_some_and(|d| d >> MINORBITS == LOOP_MAJOR)
    }

    /// `loop_validate_file()`: refuses a backing file that is, directly or
    /// through a chain of bound loop devices, the device being configured
    /// (`EBADF`), a chain through an unbound loop device (`EINVAL`), and a
    /// file that is neither regular nor a block device (`EINVAL`).
    pub(crate) fn validate_file(file: &BackingFile, bdev: &BlockDevice) -> Result {
        let mut f = file.clone();
        while Self::is_loop_device(&f) {
            if f.rdev() == Some(bdev.devt()) {
                return Err(EBADF);
            }
            // Block major 7 is ours: a disk on it that is not one of our
            // devices cannot be walked, so it is refused, never let through.
            let Some(l) = f.disk_driver::<LoopDevice>() else {
                return Err(EINVAL);
            };
            f = l.st.chain_next()?;
        }
        match file.kind() {
            Kind::Regular | Kind::Block => Ok(()),
            Kind::Other => Err(EINVAL),
        }
    }

    /// Partition rescan after (re)configuration, outside the locks;
    /// `file_name` is the `lo_file_name` the warning names on failure.
    pub(crate) fn reread_partitions(
        &self,
        bdev: &BlockDevice,
        file_name: &[u8; uapi::LO_NAME_SIZE],
    ) {
        if let Err(e) = bdev.rescan_partitions() {
            let len = file_name
                .iter()
                .position(|&b| b == 0)
                .unwrap_or(file_name.len());
            pr_warn!(
                "loop_reread_partitions: partition scan of loop{} ({}) failed (rc={})\n",
                self.number,
                BStr::from_bytes(&file_name[..len]),
                e.to_errno()
            );
        }
    }

    /// `lo_mutex`, taken killably, with the state `want`; else `err`.
    pub(crate) fn lock_in(&self, want: LoState, err: Error) -> Result<Locked<'_>> {
        let cfg = self.st.lock_killable()?;
        if cfg.state() != want {
            return Err(err);
        }
        Ok(cfg)
    }

    /// `loop_configure()`, for `LOOP_SET_FD` and `LOOP_CONFIGURE`: binds
    /// the device (`Unbound` to `Bound`).
    pub(crate) fn configure(
        &self,
        bdev: &BlockDevice,
        mode: OpenMode,
        config: &LoopConfig,
    ) -> Result {
        let file = BackingFile::fget(config.fd)?;
        Self::check_backing_file(&file)?;
        let is_loop = Self::is_loop_device(&file);
        let module_ref = ModuleRef::get();
        // Without an exclusive open, claim the device meanwhile so that no
        // one else claims it exclusively under us.
        let claim = if mode.exclusive() {
            None
        } else {
            Some(bdev.prepare_to_claim(&CONFIGURE_HOLDER)?)
        };
        // loop_global_lock_killable().
        let validate = is_loop
            .then(|| self.shared.validate.lock_killable())
            .transpose()?;
        let mut cfg = self.lock_in(LoState::Unbound, EBUSY)?;
        Self::validate_file(&file, bdev)?;
        let info = &config.info;
        if info.lo_flags & !uapi::LOOP_CONFIGURE_SETTABLE_FLAGS != 0 {
            return Err(EINVAL);
        }
        let mut new = Config::new();
        StatusUpdate::try_from(info)?.apply(&mut new);
        // As loop_configure(): the workqueue comes with the first bind.
        self.worker
            .start(&CString::try_from_fmt(fmt!("loop{}", self.number))?)?;
        new.flags = info.lo_flags;
        if !file.writable() || !mode.write() || !file.has_write_iter() {
            new.flags |= uapi::LO_FLAGS_READ_ONLY;
        }

        let disk = bdev.disk();
        // No uevents while reconfiguring.
        disk.set_uevent_suppress(true);
        disk.force_media_change();
        disk.set_read_only(new.flags & uapi::LO_FLAGS_READ_ONLY != 0);
        new.assign_backing_file(file.clone());
        let limits = disk
            .queue()
            .update_limits(|lim| new.update_limits(&file, lim, config.block_size));
        if let Err(e) = limits {
            // Undo what loop.c would leave behind.
            file.restore_gfp(new.old_gfp);
            disk.set_read_only(false);
            disk.set_uevent_suppress(false);
            return Err(e);
        }
        // Direct I/O may start now: write back the page cache first.
        let _ = file.fsync();
        new.update_dio(disk.queue().logical_block_size());
        new.module_ref = Some(module_ref);
        if self.shared.part_shift != 0 {
            new.flags |= uapi::LO_FLAGS_PARTSCAN;
        }
        let partscan = new.flags & uapi::LO_FLAGS_PARTSCAN != 0;
        // Nothing reads the configuration without lo_mutex: taking it over
        // here is seen only through the request path, which the state
        // keeps failing until `bind`, and sysfs, from `bind` on. No freeze:
        // the device is not bound yet.
        cfg.bind_config(&self.disk, disk, new)?;
        if disk.add_group(&LOOP_ATTRS).is_err() {
            pr_warn!("loop{}: cannot create the loop sysfs group\n", self.number);
        }
        cfg.set_size(disk);
        cfg.bind();
        if partscan {
            disk.set_suppress_part_scan(false);
        }
        disk.set_uevent_suppress(false);
        disk.uevent_change();

        let file_name = cfg.file_name;
        drop(cfg);
        drop(validate);
        if partscan {
            self.reread_partitions(bdev, &file_name);
        }
        drop(claim);
        Ok(())
    }

    /// `loop_clr_fd()`: marks the device for detaching at its last close,
    /// and when the caller is the only opener, stops new opens now
    /// (`Bound` to `Rundown`).
    pub(crate) fn clr_fd(&self, disk: &GenDisk) -> Result {
        let _validate = self.shared.validate.lock_killable()?;
        let mut cfg = self.lock_in(LoState::Bound, ENXIO)?;
        cfg.update(|c| c.flags |= uapi::LO_FLAGS_AUTOCLEAR);
        cfg.commit();
        if disk.openers() == 1 {
            cfg.run_down();
        }
        Ok(())
    }

    /// `__loop_clr_fd()`: detaches the backing file, at the last close of a
    /// device in `Rundown` (`Rundown` to `Unbound`).
    fn teardown(&self, disk: &ReleasingDisk<'_>) {
        self.st.stop_io(&self.disk, disk);
        let detached = self.st.lock().detach();
        // Reset the block size to the default.
        let _ = disk
            .queue()
            .update_limits(|lim| lim.set_block_size(SECTOR_SIZE));
        disk.invalidate();
        disk.remove_group(&LOOP_ATTRS);
        disk.uevent_change();
        if let Some(file) = &detached.file {
            file.restore_gfp(detached.old_gfp);
        }
        // The opener being released still holds the module.
        drop(detached.module_ref);
        disk.force_media_change();
        // Drop every partition, including those added with BLKPG.
        if let Err(e) = disk.rescan_partitions() {
            pr_warn!(
                "__loop_clr_fd: partition scan of loop{} failed (rc={})\n",
                self.number,
                e.to_errno()
            );
        }
        {
            let mut cfg = self.st.lock();
            if self.shared.part_shift == 0 {
                disk.set_suppress_part_scan(true);
            }
            cfg.unbind();
            // Free for LOOP_CTL_GET_FREE again, still under lo_mutex.
            self.shared.free.lower(self.number);
        }
        // fput() outside lo_mutex: it may take another disk's open_mutex.
        drop(detached.file);
    }
}

/// The block device and blk-mq callbacks of every loop device (`lo_fops`,
/// `loop_mq_ops`).
static LOOP_DISK_VTABLE: DiskVtable<LoopDevice> = DiskVtable::new();

impl DiskOps for LoopDevice {
    const VTABLE: &'static DiskVtable<Self> = &LOOP_DISK_VTABLE;
    type Io = Io;

    fn disk(&self) -> &Disk<Self> {
        &self.disk
    }

    /// `lo_open()`: a device on its way out cannot be opened.
    fn open(&self, _disk: &GenDisk, _mode: OpenMode) -> Result {
        let cfg = self.st.lock_killable()?;
        match cfg.state() {
            LoState::Deleting | LoState::Rundown => Err(ENXIO),
            _ => Ok(()),
        }
    }

    /// `lo_release()`: the last close of a device marked for detaching (by
    /// `LO_FLAGS_AUTOCLEAR` or `LOOP_CLR_FD`) detaches it, before the
    /// close returns.
    fn release(&self, disk: &ReleasingDisk<'_>) {
        if disk.openers() > 0 {
            return;
        }
        let need_clear = {
            let mut cfg = self.st.lock();
            if cfg.state() == LoState::Bound && cfg.flags & uapi::LO_FLAGS_AUTOCLEAR != 0 {
                cfg.run_down();
            }
            cfg.state() == LoState::Rundown
        };
        if need_clear {
            self.teardown(disk);
        }
    }

    fn ioctl(&self, bdev: &BlockDevice, mode: OpenMode, cmd: u32, arg: usize) -> Result<i32> {
        rust_loop_ioctl::ioctl(self, bdev, mode, cmd, arg)
    }

    fn compat_ioctl(
        &self,
        bdev: &BlockDevice,
        mode: OpenMode,
        cmd: u32,
        arg: usize,
    ) -> Result<i32> {
        rust_loop_ioctl::compat_ioctl(self, bdev, mode, cmd, arg)
    }

    fn queue_rq(&self, rq: Request<Self>, _last: bool) {
        rust_loop_io::queue_rq(self, rq);
    }

    fn complete(rq: Request<Self>) {
        rust_loop_io::complete(rq);
    }

    fn work(rq: Request<Self>) {
        rust_loop_io::work(rq);
    }
}

// The `loop/` group of a bound device's sysfs directory.
disk_attr_group!(
    pub(crate) LOOP_ATTRS,
    "loop",
    crate::rust_loop_dev::LoopDevice,
    [backing_file, offset, sizelimit, autoclear, partscan, dio]
);

impl DiskAttrs for LoopDevice {
    fn show(&self, name: &CStr, out: &mut SysfsBuf<'_>) -> Result {
        self.st.show_attr(name, out)
    }
}
