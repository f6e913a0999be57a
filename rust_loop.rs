// SPDX-License-Identifier: GPL-2.0

//! rust_loop: a loop block device driver in Rust, a drop-in for `loop.ko`.
//!
//! This is the crate root. It owns the module (its parameters, what it
//! registers, and their teardown) and the loop devices: the [`Registry`]
//! that indexes them in an [`XArray`], and each [`LoopDevice`], a gendisk
//! at block major 7 whose state machine and ioctls follow
//! `drivers/block/loop.c` (`Lo_unbound`, `Lo_bound`, `Lo_rundown`,
//! `Lo_deleting`).
//!
//! Other files: `rust_loop_ctl.rs` is `/dev/loop-control`;
//! `rust_loop_io.rs` is the request path (queue_rq to the backing file);
//! `sys.rs` and `sys/` hold every `unsafe` line, as small abstractions over
//! the C API.

mod rust_loop_ctl;
mod rust_loop_io;
mod sys;

use core::fmt::Write;
use kernel::{
    bindings,
    debugfs::{Dir, Scope},
    prelude::*,
    str::{BStr, CString},
    sync::{
        atomic::{Acquire, Atomic, Relaxed, Release},
        Arc, Mutex, SpinLock,
    },
    uaccess::{UserPtr, UserSlice},
    xarray::{AllocKind, XArray}, //
};
use rust_loop_io::{Io, Stats};
use sys::{
    blkdev::{BlkdevMajor, BlkdevProbe},
    disk::{
        BlockDevice, ClaimHolder, Disk, DiskOps, DiskParams, GenDisk, Limits, OpenMode,
        ReleasingDisk,
    },
    file::{BackingFile, DioAlign, Kind},
    misc::FixedMinorMisc,
    request::{IoWorkQueue, Request},
    sysfs::{disk_attr_group, DiskAttrs, SysfsBuf},
    uapi::{self, LoopConfig, LoopInfo64},
    ModuleRef,
};

/// `max_hw_sectors` of a new loop device, as `loop_add()` sets it.
const LOOP_MAX_HW_SECTORS: u32 = 2560;
/// `LOOP_MAJOR`.
const LOOP_MAJOR: u32 = bindings::LOOP_MAJOR;
/// `MINORBITS`.
const MINORBITS: u32 = bindings::MINORBITS;
/// `SECTOR_SIZE`.
const SECTOR_SIZE: u32 = 512;

module! {
    type: RustLoopModule,
    name: "rust_loop",
    authors: ["rust_loop developers"],
    description: "Loopback device support, in Rust",
    license: "GPL",
    alias: ["devname:loop-control", "char-major-10-237", "block-major-7-*"],
}

/// The parameters of loop.c, with its defaults and checks; shown (0444) in
/// `/sys/module/rust_loop/parameters/`.
mod params {
    crate::sys::param::int_param!(
        max_loop,
        8, // CONFIG_BLK_DEV_LOOP_MIN_COUNT's default
        i32::MIN,
        "Maximum number of loop devices"
    );
    crate::sys::param::int_param!(
        max_part,
        0,
        i32::MIN,
        "Maximum number of partitions per loop device"
    );
    crate::sys::param::int_param!(
        hw_queue_depth,
        128, // LOOP_DEFAULT_HW_Q_DEPTH
        1,
        "Queue depth for each hardware queue. Default: 128"
    );
    // Not in loop.c, which has a single hardware queue.
    crate::sys::param::int_param!(
        nr_hw_queues,
        0,
        0,
        "Hardware queues per loop device. Default: 0, one per CPU"
    );
}

/// The loaded module: the control device, the block major and the devices.
struct RustLoopModule {
    /// Outlives every device: dropped last.
    io_wq: Option<IoWorkQueue>,
    registry: Arc<Registry>,
    major: Option<BlkdevMajor<Registry>>,
    control: Option<Pin<KBox<FixedMinorMisc<Registry>>>>,
}

impl kernel::Module for RustLoopModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        // As loop_init(): check the parameters, register the control device
        // and the major, then pre-create the devices.
        let io_wq = IoWorkQueue::new(c"rust_loop")?;
        let registry = Registry::new()?;
        let control = KBox::pin_init(
            FixedMinorMisc::register(bindings::LOOP_CTRL_MINOR, c"loop-control", registry.clone()),
            GFP_KERNEL,
        )?;
        let major = BlkdevMajor::register(LOOP_MAJOR, c"loop", registry.clone())?;
        registry.precreate();
        pr_info!("module loaded\n");
        Ok(Self {
            io_wq: Some(io_wq),
            registry,
            major: Some(major),
            control: Some(control),
        })
    }
}

impl Drop for RustLoopModule {
    fn drop(&mut self) {
        // As loop_exit(): no probe, no control device, then no devices.
        self.major = None;
        self.control = None;
        self.registry.remove_all();
        // Waits for work items still returning from the request path.
        self.io_wq = None;
    }
}

/// What all loop devices share: `loop.c`'s globals.
#[pin_data]
pub(crate) struct Shared {
    #[pin]
    /// `loop_validate_mutex`: serializes the changes of backing files that
    /// a loop-on-loop chain check depends on.
    validate: Mutex<()>,
    /// `part_shift`: minors per device are `1 << part_shift`.
    part_shift: u32,
    /// `/sys/kernel/debug/rust_loop/`.
    debugfs: Dir,
}

/// Where the loop devices are indexed: `loop.c`'s `loop_index_idr` and
/// `loop_ctl_mutex`, as an [`XArray`] of reference-counted devices.
///
/// An entry is stored as soon as its index is taken, before its disk is
/// added, and removed only after the disk is deleted; a device is
/// *visible* (`loop.c`'s `idr_visible`) only in between, so the control
/// device never hands out a half-made or half-gone device.
#[pin_data]
pub(crate) struct Registry {
    /// Serializes index allocation and visibility changes.
    #[pin]
    ctl: Mutex<CtlState>,
    #[pin]
    devices: XArray<Arc<LoopDevice>>,
    shared: Arc<Shared>,
    /// Tags per hardware queue (`hw_queue_depth`).
    queue_depth: u32,
    /// Hardware queues per device.
    nr_hw_queues: u32,
    /// Devices created at load time.
    precreate: u32,
    /// An explicit `max_loop` also caps what the probe creates.
    probe_limit: Option<u32>,
}

/// Index bookkeeping, under [`Registry::ctl`]: the indices stored in the
/// XArray, in ascending order, for what the kernel crate's XArray cannot
/// do (walk its entries in order, find the lowest free index).
struct CtlState {
    indices: KVec<u32>,
}

impl CtlState {
    /// The lowest index not in use (`idr_alloc(..., 0, 0)`).
    fn lowest_free(&self) -> Result<u32> {
        let mut expected = 0u32;
        for &i in self.indices.iter() {
            if i != expected {
                break;
            }
            expected = expected.checked_add(1).ok_or(ENOSPC)?;
        }
        if expected > i32::MAX as u32 {
            return Err(ENOSPC);
        }
        Ok(expected)
    }

    fn insert(&mut self, index: u32) -> Result {
        let pos = self.indices.partition_point(|&i| i < index);
        self.indices.reserve(1, GFP_KERNEL)?;
        self.indices
            .insert_within_capacity(pos, index)
            .map_err(|_| ENOMEM)
    }

    fn remove(&mut self, index: u32) {
        if let Ok(pos) = self.indices.binary_search(&index) {
            let _ = self.indices.remove(pos);
        }
    }
}

impl Registry {
    /// Checks the module parameters as `loop_init()` does and creates the
    /// empty registry.
    fn new() -> Result<Arc<Self>> {
        let max_part = params::max_part.get();
        let max_loop = params::max_loop.get();
        let queue_depth = params::hw_queue_depth.get();

        let part_shift = if max_part > 0 {
            u32::BITS - (max_part as u32).leading_zeros()
        } else {
            0
        };
        if max_part > 0 {
            // As loop_init(): show user space the number of partitions that
            // fit in the minors, so it can compute a device's first minor.
            params::max_part.set(((1u64 << part_shift) - 1) as i32);
        }
        if (1u64 << part_shift) > u64::from(bindings::DISK_MAX_PARTS) {
            pr_err!("max_part {} is too large\n", max_part);
            return Err(EINVAL);
        }
        // loop.c compares the int with an unsigned long: negative is huge.
        if max_loop < 0 || max_loop as u64 > 1u64 << (MINORBITS - part_shift) {
            pr_err!("max_loop {} is out of range\n", max_loop);
            return Err(EINVAL);
        }
        let nr_hw_queues = match params::nr_hw_queues.get() {
            0 => sys::nr_cpu_ids(),
            n => n as u32,
        };
        // An explicit max_loop also caps the devices that opening a node
        // creates; the default does not.
        let precreate = max_loop as u32;
        let probe_limit = (params::max_loop.given() && max_loop > 0).then_some(precreate);
        let shared = Arc::pin_init(
            try_pin_init!(Shared {
                validate <- kernel::new_mutex!(()),
                part_shift,
                debugfs: Dir::new(c"rust_loop"),
            }),
            GFP_KERNEL,
        )?;
        Arc::pin_init(
            try_pin_init!(Registry {
                ctl <- kernel::new_mutex!(CtlState { indices: KVec::new() }),
                devices <- XArray::new(AllocKind::Alloc),
                shared,
                queue_depth: queue_depth as u32,
                nr_hw_queues,
                precreate,
                probe_limit,
            }),
            GFP_KERNEL,
        )
    }

    /// Creates the devices asked for at load time (`max_loop`).
    fn precreate(&self) {
        for i in 0..self.precreate {
            // As loop_init(), which ignores loop_add() failures.
            let _ = self.add(i as i32);
        }
    }

    /// `LOOP_CTL_ADD`: creates `loop<index>`, or the lowest free index when
    /// `index` is negative; returns the index.
    pub(crate) fn add(&self, index: i32) -> Result<u32> {
        let dev = {
            let mut ctl = self.ctl.lock();
            let index = if index >= 0 {
                if self.devices.lock().get(index as usize).is_some() {
                    return Err(EEXIST);
                }
                index as u32
            } else {
                ctl.lowest_free()?
            };
            let dev = LoopDevice::new(index, self)?;
            ctl.insert(index)?;
            if let Err(e) = self
                .devices
                .lock()
                .store(index as usize, dev.clone(), GFP_KERNEL)
            {
                ctl.remove(index);
                return Err(e.error);
            }
            dev
        };

        if let Err(e) = dev.disk.add(dev.clone()) {
            self.forget(dev.number);
            return Err(e);
        }

        let _ctl = self.ctl.lock();
        dev.visible.store(true, Relaxed);
        Ok(dev.number)
    }

    /// Drops the XArray's reference to `index`.
    fn forget(&self, index: u32) {
        let dev = {
            let mut ctl = self.ctl.lock();
            ctl.remove(index);
            self.devices.lock().remove(index as usize)
        };
        // The last reference may go here: drop it outside the locks (the
        // XArray's is a spinlock), since freeing a device sleeps.
        drop(dev);
    }

    /// The visible device at `index`.
    fn lookup(&self, index: usize) -> Option<Arc<LoopDevice>> {
        let xa = self.devices.lock();
        let dev = xa.get(index)?;
        dev.visible.load(Relaxed).then(|| dev.into())
    }

    /// `LOOP_CTL_REMOVE`.
    pub(crate) fn remove(&self, index: i32) -> Result {
        if index < 0 {
            kernel::pr_warn_once!("deleting an unspecified loop device is not supported.\n");
            return Err(EINVAL);
        }
        // Hide the device first, so that nothing else picks it up.
        let dev = {
            let _ctl = self.ctl.lock();
            let dev = self.lookup(index as usize).ok_or(ENODEV)?;
            dev.visible.store(false, Relaxed);
            dev
        };
        if let Err(e) = dev.mark_deleting() {
            let _ctl = self.ctl.lock();
            dev.visible.store(true, Relaxed);
            return Err(e);
        }
        dev.disk.remove();
        self.forget(dev.number);
        Ok(())
    }

    /// `LOOP_CTL_GET_FREE`: the lowest visible unbound device, else a new
    /// one.
    pub(crate) fn get_free(&self) -> Result<u32> {
        {
            let ctl = self.ctl.lock();
            let xa = self.devices.lock();
            for &i in ctl.indices.iter() {
                if let Some(dev) = xa.get(i as usize) {
                    // A race here only makes a new device, as in loop.c.
                    if dev.visible.load(Relaxed) && dev.state() == LoState::Unbound {
                        return Ok(i);
                    }
                }
            }
        }
        self.add(-1)
    }

    /// Removes every device, at module unload (nothing can open one then).
    fn remove_all(&self) {
        loop {
            let first = self.ctl.lock().indices.first().copied();
            let Some(i) = first else {
                break;
            };
            let dev = self.devices.lock().get(i as usize).map(Arc::from);
            if let Some(dev) = dev {
                dev.disk.remove();
            }
            self.forget(i);
        }
    }
}

impl BlkdevProbe for Registry {
    /// `loop_probe()`: an open of a `/dev/loopN` node without a device
    /// creates it, unless an explicit `max_loop` caps the index.
    fn probe(&self, minor: u32) {
        let index = minor >> self.shared.part_shift;
        if self.probe_limit.is_some_and(|limit| index >= limit) {
            return;
        }
        let _ = self.add(index as i32);
    }
}

/// `lo_state`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(i32)]
pub(crate) enum LoState {
    /// No backing file.
    Unbound = 0,
    /// Serving I/O from a backing file.
    Bound = 1,
    /// Being detached from its backing file.
    Rundown = 2,
    /// Being removed by `LOOP_CTL_REMOVE`.
    Deleting = 3,
}

impl LoState {
    fn from_i32(v: i32) -> Self {
        match v {
            1 => LoState::Bound,
            2 => LoState::Rundown,
            3 => LoState::Deleting,
            _ => LoState::Unbound,
        }
    }
}

/// The configuration of a bound loop device, under [`LoopDevice::lock`]
/// (`loop.c`'s `lo_mutex`).
pub(crate) struct Config {
    /// `lo_backing_file`.
    file: Option<BackingFile>,
    /// `lo_offset`.
    offset: u64,
    /// `lo_sizelimit`.
    sizelimit: u64,
    /// `lo_flags`.
    flags: u32,
    /// `lo_file_name`.
    file_name: [u8; uapi::LO_NAME_SIZE],
    /// `lo_min_dio_size` and `lo_dio_mem_align`.
    dio_align: DioAlign,
    /// The backing file's page-cache allocation mask before binding.
    old_gfp: u32,
    /// A bound device keeps the module loaded.
    module_ref: Option<ModuleRef>,
}

impl Config {
    fn new() -> Self {
        Config {
            file: None,
            offset: 0,
            sizelimit: 0,
            flags: 0,
            file_name: [0; uapi::LO_NAME_SIZE],
            dio_align: DioAlign {
                min_size: SECTOR_SIZE,
                mem_mask: SECTOR_SIZE - 1,
            },
            old_gfp: 0,
            module_ref: None,
        }
    }
}

/// The part of a `loop_info64` that `LOOP_SET_STATUS*` and
/// `LOOP_CONFIGURE` take over, once checked.
struct StatusUpdate {
    offset: u64,
    sizelimit: u64,
    file_name: [u8; uapi::LO_NAME_SIZE],
}

impl StatusUpdate {
    fn apply(self, cfg: &mut Config) {
        cfg.offset = self.offset;
        cfg.sizelimit = self.sizelimit;
        cfg.file_name = self.file_name;
    }
}

/// What sysfs and the loop-on-loop chain check read, under a spinlock
/// (`loop.c`'s `lo_lock`): it must never wait for `lo_mutex`, which is
/// held while the `loop/` sysfs group is removed.
struct Shown {
    file: Option<BackingFile>,
    bound: bool,
    offset: u64,
    sizelimit: u64,
    flags: u32,
}

/// The size of the device in 512-byte sectors, as `lo_calculate_size()`:
/// the backing size less the offset, capped by the size limit.
fn calculate_size(file: &BackingFile, offset: u64, sizelimit: u64) -> u64 {
    let mut size = file.size() as i64;
    if offset > 0 {
        size = size.saturating_sub(offset as i64);
    }
    if size < 0 {
        return 0;
    }
    let mut size = size as u64;
    if sizelimit > 0 && sizelimit < size {
        size = sizelimit;
    }
    size >> 9
}

/// `huge_encode_dev()`: a kernel `dev_t` in the 64-bit user encoding.
fn huge_encode_dev(dev: u32) -> u64 {
    let major = u64::from(dev >> MINORBITS);
    let minor = u64::from(dev & ((1 << MINORBITS) - 1));
    (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12)
}

static CONFIGURE_HOLDER: ClaimHolder = ClaimHolder::new();
static BLOCK_SIZE_HOLDER: ClaimHolder = ClaimHolder::new();

disk_attr_group!(
    LOOP_ATTRS,
    "loop",
    crate::LoopDevice,
    [backing_file, offset, sizelimit, autoclear, partscan, dio]
);

/// One loop device: `/dev/loopN`.
#[pin_data]
pub(crate) struct LoopDevice {
    /// `N`.
    number: u32,
    shared: Arc<Shared>,
    /// `lo_mutex`: serializes configuration changes and state transitions.
    #[pin]
    lock: Mutex<Config>,
    /// `lo_lock`: the sysfs view.
    #[pin]
    shown: SpinLock<Shown>,
    /// `lo_state`, written under `lock`, readable without it.
    state: Atomic<i32>,
    /// `idr_visible`, written under the registry's `ctl` lock.
    visible: Atomic<bool>,
    /// Request counters, in `/sys/kernel/debug/rust_loop/loopN/stats`.
    #[pin]
    stats: Scope<Stats>,
    /// The gendisk and its tag set.
    #[pin]
    disk: Disk<LoopDevice>,
}

impl LoopDevice {
    fn new(index: u32, reg: &Registry) -> Result<Arc<Self>> {
        let part_shift = reg.shared.part_shift;
        let params = DiskParams {
            major: LOOP_MAJOR,
            // `i << part_shift` in loop.c's int arithmetic; add_disk()
            // rejects what does not fit.
            first_minor: (index as i32).wrapping_shl(part_shift) as u32,
            minors: 1 << part_shift,
            nr_hw_queues: reg.nr_hw_queues,
            queue_depth: reg.queue_depth,
            max_hw_sectors: LOOP_MAX_HW_SECTORS,
            suppress_part_scan: part_shift == 0,
        };
        let name = CString::try_from_fmt(fmt!("loop{}", index))?;
        Arc::pin_init(
            try_pin_init!(LoopDevice {
                number: index,
                shared: reg.shared.clone(),
                lock <- kernel::new_mutex!(Config::new()),
                shown <- kernel::new_spinlock!(Shown {
                    file: None,
                    bound: false,
                    offset: 0,
                    sizelimit: 0,
                    flags: 0,
                }),
                state: Atomic::new(LoState::Unbound as i32),
                visible: Atomic::new(false),
                stats <- reg.shared.debugfs.scope(Stats::new(), &name, |stats, dir| {
                    dir.read_only_file(c"stats", stats);
                }),
                disk <- Disk::new(params, fmt!("loop{}", index), Io::unbound()),
            }),
            GFP_KERNEL,
        )
    }

    pub(crate) fn state(&self) -> LoState {
        LoState::from_i32(self.state.load(Acquire))
    }

    fn set_state(&self, _cfg: &Config, state: LoState) {
        self.state.store(state as i32, Release);
    }

    pub(crate) fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Copies the configuration to what sysfs and the chain check read.
    fn publish(&self, cfg: &Config, bound: bool) {
        let mut shown = self.shown.lock();
        shown.file = cfg.file.clone();
        shown.bound = bound;
        shown.offset = cfg.offset;
        shown.sizelimit = cfg.sizelimit;
        shown.flags = cfg.flags;
    }

    /// The `LOOP_CTL_REMOVE` check: an unbound device nobody has open
    /// becomes `Deleting`; anything else is busy.
    fn mark_deleting(&self) -> Result {
        let cfg = self.lock.lock();
        if self.state() != LoState::Unbound || self.disk.openers() > 0 {
            return Err(EBUSY);
        }
        self.set_state(&cfg, LoState::Deleting);
        Ok(())
    }

    /// `loop_check_backing_file()`.
    fn check_backing_file(file: &BackingFile) -> Result {
        if !file.has_read_iter() || (file.writable() && !file.has_write_iter()) {
            return Err(EINVAL);
        }
        Ok(())
    }

    /// Whether `file` is a loop device (`is_loop_device()`).
    fn is_loop_device(file: &BackingFile) -> bool {
        file.rdev().is_some_and(|d| d >> MINORBITS == LOOP_MAJOR)
    }

    /// `loop_validate_file()`: refuses a backing file that is, directly or
    /// through a chain of bound loop devices, the device being configured
    /// (`EBADF`), a chain through an unbound loop device (`EINVAL`), and a
    /// file that is neither regular nor a block device (`EINVAL`).
    fn validate_file(file: &BackingFile, bdev: &BlockDevice) -> Result {
        let mut f = file.clone();
        while Self::is_loop_device(&f) {
            if f.rdev() == Some(bdev.devt()) {
                return Err(EBADF);
            }
            let Some(l) = f.disk_driver::<LoopDevice>() else {
                break;
            };
            let next = {
                let shown = l.shown.lock();
                if !shown.bound {
                    return Err(EINVAL);
                }
                shown.file.clone()
            };
            match next {
                Some(n) => f = n,
                None => return Err(EINVAL),
            }
        }
        match file.kind() {
            Kind::Regular | Kind::Block => Ok(()),
            Kind::Other => Err(EINVAL),
        }
    }

    /// The checks of `loop_set_status_from_info()`; the update applies the
    /// offset, size limit and file name of `info`.
    fn check_info(info: &LoopInfo64) -> Result<StatusUpdate> {
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

    /// `lo_can_use_dio()` with logical block size `lbs`.
    fn can_use_dio(cfg: &Config, file: &BackingFile, lbs: u32) -> bool {
        let min = cfg.dio_align.min_size.max(1);
        file.can_odirect() && lbs >= min && cfg.offset & u64::from(min - 1) == 0
    }

    /// `loop_update_dio()`: drops `LO_FLAGS_DIRECT_IO` when it cannot work.
    fn update_dio(cfg: &mut Config, lbs: u32) {
        if cfg.flags & uapi::LO_FLAGS_DIRECT_IO != 0 {
            if let Some(file) = &cfg.file {
                if !Self::can_use_dio(cfg, file, lbs) {
                    cfg.flags &= !uapi::LO_FLAGS_DIRECT_IO;
                }
            }
        }
    }

    /// `loop_set_dma_limit()`.
    fn set_dma_limit(cfg: &Config, lim: &mut Limits) {
        if cfg.flags & uapi::LO_FLAGS_DIRECT_IO != 0 {
            lim.set_dma_alignment(cfg.dio_align.mem_mask.max(SECTOR_SIZE - 1));
        } else {
            lim.set_dma_alignment(SECTOR_SIZE - 1);
        }
    }

    /// `loop_update_limits()`: queue limits for the backing file, with
    /// logical block size `bsize` (0: 512, or the direct-I/O minimum).
    fn update_limits(cfg: &Config, file: &BackingFile, lim: &mut Limits, bsize: u32) {
        let bsize = match bsize {
            0 if cfg.flags & uapi::LO_FLAGS_DIRECT_IO != 0 => cfg.dio_align.min_size,
            0 => SECTOR_SIZE,
            b => b,
        };
        let (max_discard, granularity) = file.discard_config();
        lim.set_block_size(bsize);
        Self::set_dma_limit(cfg, lim);
        lim.set_features(
            file.has_fsync() && cfg.flags & uapi::LO_FLAGS_READ_ONLY == 0,
            file.rotational(),
        );
        lim.set_discard(max_discard, granularity);
    }

    /// `loop_assign_backing_file()`: takes `file` as the backing store.
    fn assign_backing_file(cfg: &mut Config, file: BackingFile) {
        cfg.old_gfp = file.limit_gfp();
        if file.o_direct() {
            cfg.flags |= uapi::LO_FLAGS_DIRECT_IO;
        }
        cfg.dio_align = file.dio_align();
        cfg.file = Some(file);
    }

    /// `loop_set_size()`.
    fn set_size(disk: &GenDisk, cfg: &Config) {
        if let Some(file) = &cfg.file {
            disk.set_capacity_and_notify(calculate_size(file, cfg.offset, cfg.sizelimit));
        }
    }

    /// Partition rescan after (re)configuration, outside the locks;
    /// `file_name` is the `lo_file_name` the warning names on failure.
    fn reread_partitions(&self, disk: &GenDisk, file_name: &[u8; uapi::LO_NAME_SIZE]) {
        if let Err(e) = disk.rescan_partitions() {
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

    /// `loop_configure()`, for `LOOP_SET_FD` and `LOOP_CONFIGURE`.
    fn configure(&self, bdev: &BlockDevice, mode: OpenMode, config: &LoopConfig) -> Result {
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
        let validate = is_loop.then(|| self.shared.validate.lock());
        let mut cfg = self.lock.lock();

        if self.state() != LoState::Unbound {
            return Err(EBUSY);
        }
        Self::validate_file(&file, bdev)?;
        let info = &config.info;
        if info.lo_flags & !uapi::LOOP_CONFIGURE_SETTABLE_FLAGS != 0 {
            return Err(EINVAL);
        }
        let mut new = Config::new();
        Self::check_info(info)?.apply(&mut new);
        new.flags = info.lo_flags;
        if !file.writable() || !mode.write() || !file.has_write_iter() {
            new.flags |= uapi::LO_FLAGS_READ_ONLY;
        }

        let disk = bdev.disk();
        // No uevents while reconfiguring.
        disk.set_uevent_suppress(true);
        disk.force_media_change();
        disk.set_read_only(new.flags & uapi::LO_FLAGS_READ_ONLY != 0);
        Self::assign_backing_file(&mut new, file.clone());
        let limits = disk
            .queue()
            .update_limits(|lim| Self::update_limits(&new, &file, lim, config.block_size));
        if let Err(e) = limits {
            // Undo what loop.c would leave behind.
            file.restore_gfp(new.old_gfp);
            disk.set_read_only(false);
            disk.set_uevent_suppress(false);
            return Err(e);
        }
        // Direct I/O may start now: write back the page cache first.
        let _ = file.fsync();
        Self::update_dio(&mut new, disk.queue().logical_block_size());
        {
            let mut io = self.disk.freeze_io(disk)?;
            *io.io() = Io::bound(&new);
        }
        if disk.add_group(&LOOP_ATTRS).is_err() {
            pr_warn!("loop{}: cannot create the loop sysfs group\n", self.number);
        }
        Self::set_size(disk, &new);

        new.module_ref = Some(module_ref);
        if self.shared.part_shift != 0 {
            new.flags |= uapi::LO_FLAGS_PARTSCAN;
        }
        let partscan = new.flags & uapi::LO_FLAGS_PARTSCAN != 0;
        *cfg = new;
        self.publish(&cfg, true);
        self.set_state(&cfg, LoState::Bound);
        if partscan {
            disk.set_suppress_part_scan(false);
        }
        disk.set_uevent_suppress(false);
        disk.uevent_change();

        let file_name = cfg.file_name;
        drop(cfg);
        drop(validate);
        if partscan {
            self.reread_partitions(disk, &file_name);
        }
        drop(claim);
        Ok(())
    }

    /// `loop_clr_fd()`: marks the device for detaching at its last close,
    /// and when the caller is the only opener, stops new opens now.
    fn clr_fd(&self, disk: &GenDisk) -> Result {
        let _validate = self.shared.validate.lock();
        let mut cfg = self.lock.lock();
        if self.state() != LoState::Bound {
            return Err(ENXIO);
        }
        cfg.flags |= uapi::LO_FLAGS_AUTOCLEAR;
        self.publish(&cfg, true);
        if disk.openers() == 1 {
            self.set_state(&cfg, LoState::Rundown);
        }
        Ok(())
    }

    /// `__loop_clr_fd()`: detaches the backing file, at the last close of a
    /// device in `Rundown`.
    fn teardown(&self, disk: &ReleasingDisk<'_>) {
        // Stop sysfs and chain checks from seeing the file.
        {
            let mut shown = self.shown.lock();
            shown.file = None;
            shown.bound = false;
        }
        // No request is in flight (this is the last close), but the data
        // path state changes only with the queue frozen.
        if let Ok(mut io) = self.disk.freeze_io(disk) {
            *io.io() = Io::unbound();
        }
        let (file, old_gfp, module_ref) = {
            let mut cfg = self.lock.lock();
            cfg.offset = 0;
            cfg.sizelimit = 0;
            cfg.file_name = [0; uapi::LO_NAME_SIZE];
            (cfg.file.take(), cfg.old_gfp, cfg.module_ref.take())
        };
        // Reset the block size to the default.
        let _ = disk
            .queue()
            .update_limits(|lim| lim.set_block_size(SECTOR_SIZE));
        disk.invalidate();
        disk.remove_group(&LOOP_ATTRS);
        disk.uevent_change();
        if let Some(file) = &file {
            file.restore_gfp(old_gfp);
        }
        // The opener being released still holds the module.
        drop(module_ref);
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
            let mut cfg = self.lock.lock();
            cfg.flags = 0;
            if self.shared.part_shift == 0 {
                disk.set_suppress_part_scan(true);
            }
            self.publish(&cfg, false);
            self.set_state(&cfg, LoState::Unbound);
        }
        // fput() outside lo_mutex: it may take another disk's open_mutex.
        drop(file);
    }

    /// `loop_get_status()`.
    fn get_status(&self) -> Result<LoopInfo64> {
        let (mut info, file) = {
            let cfg = self.lock.lock();
            if self.state() != LoState::Bound {
                return Err(ENXIO);
            }
            let mut info = LoopInfo64::zeroed();
            info.lo_number = self.number;
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
    fn set_status(&self, disk: &GenDisk, info: &LoopInfo64) -> Result {
        let mut cfg = self.lock.lock();
        if self.state() != LoState::Bound {
            return Err(ENXIO);
        }
        let size_changed = cfg.offset != info.lo_offset || cfg.sizelimit != info.lo_sizelimit;
        if size_changed {
            disk.sync_and_invalidate();
        }
        let partscan;
        {
            // I/O drains before the offset or the size limit change.
            let mut io = self.disk.freeze_io(disk)?;
            Self::check_info(info)?.apply(&mut cfg);
            partscan = cfg.flags & uapi::LO_FLAGS_PARTSCAN == 0
                && info.lo_flags & uapi::LO_FLAGS_PARTSCAN != 0;
            cfg.flags &= !uapi::LOOP_SET_STATUS_CLEARABLE_FLAGS;
            cfg.flags |= info.lo_flags & uapi::LOOP_SET_STATUS_SETTABLE_FLAGS;
            // The offset may have made direct I/O impossible.
            Self::update_dio(&mut cfg, io.queue().logical_block_size());
            *io.io() = Io::bound(&cfg);
        }
        if partscan {
            disk.set_suppress_part_scan(false);
        }
        if size_changed {
            Self::set_size(disk, &cfg);
        }
        self.publish(&cfg, true);
        let file_name = cfg.file_name;
        drop(cfg);
        if partscan {
            self.reread_partitions(disk, &file_name);
        }
        Ok(())
    }

    /// `loop_set_capacity()`.
    fn set_capacity(&self, disk: &GenDisk) -> Result {
        let cfg = self.lock.lock();
        if self.state() != LoState::Bound {
            return Err(ENXIO);
        }
        Self::set_size(disk, &cfg);
        Ok(())
    }

    /// `loop_set_dio()`.
    fn set_dio(&self, disk: &GenDisk, arg: usize) -> Result {
        let mut cfg = self.lock.lock();
        if self.state() != LoState::Bound {
            return Err(ENXIO);
        }
        let use_dio = arg != 0;
        if use_dio == (cfg.flags & uapi::LO_FLAGS_DIRECT_IO != 0) {
            return Ok(());
        }
        let file = cfg.file.clone().ok_or(ENXIO)?;
        if use_dio {
            if !Self::can_use_dio(&cfg, &file, disk.queue().logical_block_size()) {
                return Err(EINVAL);
            }
            // Write back the page cache before starting direct I/O.
            let _ = file.fsync();
        }
        if use_dio {
            cfg.flags |= uapi::LO_FLAGS_DIRECT_IO;
        } else {
            cfg.flags &= !uapi::LO_FLAGS_DIRECT_IO;
        }
        let (ret, mut io) = self
            .disk
            .update_limits_frozen(disk, |lim| Self::set_dma_limit(&cfg, lim))?;
        *io.io() = Io::bound(&cfg);
        drop(io);
        self.publish(&cfg, true);
        ret
    }

    /// `loop_set_block_size()`.
    fn set_block_size(&self, bdev: &BlockDevice, mode: OpenMode, arg: usize) -> Result {
        let _claim = if mode.exclusive() {
            None
        } else {
            Some(bdev.prepare_to_claim(&BLOCK_SIZE_HOLDER)?)
        };
        let disk = bdev.disk();
        let mut cfg = self.lock.lock();
        if self.state() != LoState::Bound {
            return Err(ENXIO);
        }
        if disk.queue().logical_block_size() as usize == arg {
            return Ok(());
        }
        let file = cfg.file.clone().ok_or(ENXIO)?;
        disk.sync_and_invalidate();
        let bsize = u32::try_from(arg).unwrap_or(u32::MAX);
        let (ret, mut io) = self
            .disk
            .update_limits_frozen(disk, |lim| Self::update_limits(&cfg, &file, lim, bsize))?;
        Self::update_dio(&mut cfg, io.queue().logical_block_size());
        *io.io() = Io::bound(&cfg);
        drop(io);
        self.publish(&cfg, true);
        ret
    }

    /// `loop_change_fd()`: swaps the backing file of a read-only device
    /// for one of the same size.
    fn change_fd(&self, bdev: &BlockDevice, fd: u32) -> Result {
        let file = BackingFile::fget(fd)?;
        Self::check_backing_file(&file)?;
        let disk = bdev.disk();
        disk.set_uevent_suppress(true);
        let ret = self.do_change_fd(bdev, file);
        disk.set_uevent_suppress(false);
        disk.uevent_change();
        ret
    }

    fn do_change_fd(&self, bdev: &BlockDevice, file: BackingFile) -> Result {
        let disk = bdev.disk();
        let is_loop = Self::is_loop_device(&file);
        let validate = is_loop.then(|| self.shared.validate.lock());
        let mut cfg = self.lock.lock();
        if self.state() != LoState::Bound {
            return Err(ENXIO);
        }
        if cfg.flags & uapi::LO_FLAGS_READ_ONLY == 0 {
            return Err(EINVAL);
        }
        Self::validate_file(&file, bdev)?;
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
            let mut io = self.disk.freeze_io(disk)?;
            old.restore_gfp(cfg.old_gfp);
            Self::assign_backing_file(&mut cfg, file);
            Self::update_dio(&mut cfg, io.queue().logical_block_size());
            *io.io() = Io::bound(&cfg);
        }
        self.publish(&cfg, true);
        let partscan = cfg.flags & uapi::LO_FLAGS_PARTSCAN != 0;
        let file_name = cfg.file_name;
        drop(cfg);
        drop(validate);
        // Wait for chain checks that may still look at the old file.
        if !is_loop {
            drop(self.shared.validate.lock());
        }
        drop(old);
        if partscan {
            self.reread_partitions(disk, &file_name);
        }
        Ok(())
    }

    /// `lo_ioctl()`.
    fn do_ioctl(&self, bdev: &BlockDevice, mode: OpenMode, cmd: u32, arg: usize) -> Result<i32> {
        let may_write = || mode.write() || sys::capable_sys_admin();
        let disk = bdev.disk();
        let user = |len| UserSlice::new(UserPtr::from_addr(arg), len);
        match cmd {
            uapi::LOOP_SET_FD => {
                // The legacy ioctl: a zeroed loop_config with only the fd.
                let mut config = LoopConfig::zeroed();
                config.fd = arg as u32;
                self.configure(bdev, mode, &config)?;
            }
            uapi::LOOP_CONFIGURE => {
                let config: LoopConfig =
                    user(core::mem::size_of::<LoopConfig>()).reader().read()?;
                self.configure(bdev, mode, &config)?;
            }
            uapi::LOOP_CHANGE_FD => self.change_fd(bdev, arg as u32)?,
            uapi::LOOP_CLR_FD => self.clr_fd(disk)?,
            uapi::LOOP_SET_STATUS => {
                if !may_write() {
                    return Err(EPERM);
                }
                let old: uapi::LoopInfo = user(core::mem::size_of::<uapi::LoopInfo>())
                    .reader()
                    .read()?;
                self.set_status(disk, &info64_from_old(&old))?;
            }
            uapi::LOOP_GET_STATUS => {
                if arg == 0 {
                    return Err(EINVAL);
                }
                let old = info64_to_old(&self.get_status()?)?;
                user(core::mem::size_of::<uapi::LoopInfo>())
                    .writer()
                    .write(&old)?;
            }
            uapi::LOOP_SET_STATUS64 => {
                if !may_write() {
                    return Err(EPERM);
                }
                let info: LoopInfo64 = user(core::mem::size_of::<LoopInfo64>()).reader().read()?;
                self.set_status(disk, &info)?;
            }
            uapi::LOOP_GET_STATUS64 => {
                if arg == 0 {
                    return Err(EINVAL);
                }
                let info = self.get_status()?;
                user(core::mem::size_of::<LoopInfo64>())
                    .writer()
                    .write(&info)?;
            }
            uapi::LOOP_SET_BLOCK_SIZE => {
                if !may_write() {
                    return Err(EPERM);
                }
                self.set_block_size(bdev, mode, arg)?;
            }
            uapi::LOOP_SET_CAPACITY => {
                if !may_write() {
                    return Err(EPERM);
                }
                self.set_capacity(disk)?;
            }
            uapi::LOOP_SET_DIRECT_IO => {
                if !may_write() {
                    return Err(EPERM);
                }
                self.set_dio(disk, arg)?;
            }
            // lo_simple_ioctl() answers anything else with EINVAL, under
            // lo_mutex.
            _ => {
                let _cfg = self.lock.lock();
                return Err(EINVAL);
            }
        }
        Ok(0)
    }

    /// `lo_compat_ioctl()`: the old status structure in its 32-bit layout;
    /// pointer arguments are already zero-extended on x86-64.
    fn do_compat_ioctl(
        &self,
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
                let c: uapi::CompatLoopInfo = user(core::mem::size_of::<uapi::CompatLoopInfo>())
                    .reader()
                    .read()?;
                self.set_status(bdev.disk(), &info64_from_compat(&c))?;
                Ok(0)
            }
            uapi::LOOP_GET_STATUS => {
                if arg == 0 {
                    return Err(EINVAL);
                }
                let c = info64_to_compat(&self.get_status()?)?;
                user(core::mem::size_of::<uapi::CompatLoopInfo>())
                    .writer()
                    .write(&c)?;
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
            | uapi::LOOP_SET_DIRECT_IO => self.do_ioctl(bdev, mode, cmd, arg),
            _ => Err(ENOIOCTLCMD),
        }
    }
}

/// `loop_info64_from_old()`.
fn info64_from_old(old: &uapi::LoopInfo) -> LoopInfo64 {
    let mut info = LoopInfo64::zeroed();
    info.lo_number = old.lo_number as u32;
    info.lo_device = old.lo_device;
    info.lo_inode = old.lo_inode;
    info.lo_rdevice = old.lo_rdevice;
    info.lo_offset = i64::from(old.lo_offset) as u64;
    info.lo_sizelimit = 0;
    info.lo_flags = old.lo_flags as u32;
    info.lo_file_name = old.lo_name;
    info
}

/// `loop_info64_to_old()`: `EOVERFLOW` when a value does not fit.
fn info64_to_old(info: &LoopInfo64) -> Result<uapi::LoopInfo> {
    let mut old = uapi::LoopInfo::zeroed();
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

/// `loop_info64_from_compat()`.
fn info64_from_compat(c: &uapi::CompatLoopInfo) -> LoopInfo64 {
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

/// `loop_info64_to_compat()`: `EOVERFLOW` when a value does not fit.
fn info64_to_compat(info: &LoopInfo64) -> Result<uapi::CompatLoopInfo> {
    let mut c = uapi::CompatLoopInfo::zeroed();
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

impl DiskOps for LoopDevice {
    type Io = Io;

    fn disk(&self) -> &Disk<Self> {
        &self.disk
    }

    /// `lo_open()`: a device on its way out cannot be opened.
    fn open(&self, _disk: &GenDisk, _mode: OpenMode) -> Result {
        let _cfg = self.lock.lock();
        match self.state() {
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
            let cfg = self.lock.lock();
            if self.state() == LoState::Bound && cfg.flags & uapi::LO_FLAGS_AUTOCLEAR != 0 {
                self.set_state(&cfg, LoState::Rundown);
            }
            self.state() == LoState::Rundown
        };
        if need_clear {
            self.teardown(disk);
        }
    }

    fn ioctl(&self, bdev: &BlockDevice, mode: OpenMode, cmd: u32, arg: usize) -> Result<i32> {
        self.do_ioctl(bdev, mode, cmd, arg)
    }

    fn compat_ioctl(
        &self,
        bdev: &BlockDevice,
        mode: OpenMode,
        cmd: u32,
        arg: usize,
    ) -> Result<i32> {
        self.do_compat_ioctl(bdev, mode, cmd, arg)
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

impl DiskAttrs for LoopDevice {
    /// The `loop/` group of `loop.c`'s `loop_attrs`.
    fn show(&self, name: &CStr, out: &mut SysfsBuf<'_>) -> Result {
        let shown = self.shown.lock();
        let flag = |f: u32| if shown.flags & f != 0 { "1" } else { "0" };
        let r = match name.to_bytes() {
            b"backing_file" => {
                // Between the detach clearing the file and the group's
                // removal, `loop_attr_backing_file_show()` reads nothing.
                let Some(file) = shown.file.clone() else {
                    return Ok(());
                };
                drop(shown);
                return out.fill(|page| {
                    let limit = page.len() - 1;
                    let range = file.path_into(&mut page[..limit])?;
                    let n = range.len();
                    page.copy_within(range, 0);
                    page[n] = b'\n';
                    Ok(n + 1)
                });
            }
            b"offset" => writeln!(out, "{}", shown.offset),
            b"sizelimit" => writeln!(out, "{}", shown.sizelimit),
            b"autoclear" => writeln!(out, "{}", flag(uapi::LO_FLAGS_AUTOCLEAR)),
            b"partscan" => writeln!(out, "{}", flag(uapi::LO_FLAGS_PARTSCAN)),
            b"dio" => writeln!(out, "{}", flag(uapi::LO_FLAGS_DIRECT_IO)),
            _ => return Err(EINVAL),
        };
        r.map_err(|_| EINVAL)
    }
}
