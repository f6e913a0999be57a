// SPDX-License-Identifier: GPL-2.0

//! rust_loop: a loop block device driver in Rust, a drop-in for `loop.ko`.
//!
//! This is the crate root. It owns the module (its parameters, what it
//! registers, and their teardown) and the loop devices: the [`Registry`]
//! that indexes them in an [`XArray`], and each [`LoopDevice`], a gendisk
//! at block major 7 whose state machine follows `drivers/block/loop.c`
//! (`Lo_unbound`, `Lo_bound`, `Lo_rundown`, `Lo_deleting`).
//!
//! Other files: `rust_loop_ctl.rs` is `/dev/loop-control`; `sys.rs` and
//! `sys/` hold every `unsafe` line, as small abstractions over the C API.

mod rust_loop_ctl;
mod sys;

use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use kernel::{
    bindings,
    prelude::*,
    sync::{Arc, Mutex},
    xarray::{AllocKind, XArray}, //
};
use sys::{
    blkdev::{BlkdevMajor, BlkdevProbe},
    disk::{BlockDevice, Disk, DiskOps, DiskParams, GenDisk, OpenMode, ReleasingDisk},
    misc::FixedMinorMisc,
    request::{Request, Status},
    uapi, //
};

/// `max_loop` when the parameter was not given: `loop.c` then pre-creates
/// `CONFIG_BLK_DEV_LOOP_MIN_COUNT` devices and does not cap on-demand
/// creation. (The kernel crate's parameters cannot tell "not given" from
/// "given the default", so the default is a value no one passes.)
const MAX_LOOP_NOT_GIVEN: i32 = i32::MIN;
/// `CONFIG_BLK_DEV_LOOP_MIN_COUNT`'s default.
const DEFAULT_MAX_LOOP: u32 = 8;
/// `max_hw_sectors` of a new loop device, as `loop_add()` sets it.
const LOOP_MAX_HW_SECTORS: u32 = 2560;
/// `LOOP_MAJOR`.
const LOOP_MAJOR: u32 = bindings::LOOP_MAJOR;
/// `MINORBITS`.
const MINORBITS: u32 = bindings::MINORBITS;

module! {
    type: RustLoopModule,
    name: "rust_loop",
    authors: ["rust_loop developers"],
    description: "Loopback device support, in Rust",
    license: "GPL",
    alias: ["devname:loop-control", "char-major-10-237", "block-major-7-*"],
    params: {
        max_loop: i32 {
            // MAX_LOOP_NOT_GIVEN
            default: -2147483648,
            description: "Maximum number of loop devices",
        },
        max_part: i32 {
            default: 0,
            description: "Maximum number of partitions per loop device",
        },
        hw_queue_depth: i32 {
            // DEFAULT_HW_QUEUE_DEPTH
            default: 128,
            description: "Queue depth for each hardware queue. Default: 128",
        },
    },
}

/// The loaded module: the control device, the block major and the devices.
struct RustLoopModule {
    registry: Arc<Registry>,
    major: Option<BlkdevMajor<Registry>>,
    control: Option<Pin<KBox<FixedMinorMisc<Registry>>>>,
}

impl kernel::Module for RustLoopModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        // As loop_init(): check the parameters, register the control device
        // and the major, then pre-create the devices.
        let registry = Registry::new()?;
        let control = KBox::pin_init(
            FixedMinorMisc::register(bindings::LOOP_CTRL_MINOR, c"loop-control", registry.clone()),
            GFP_KERNEL,
        )?;
        let major = BlkdevMajor::register(LOOP_MAJOR, c"loop", registry.clone())?;
        registry.precreate();
        pr_info!("module loaded\n");
        Ok(Self {
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
    }
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
    /// `part_shift`: minors per device are `1 << part_shift`.
    part_shift: u32,
    /// Tags per hardware queue (`hw_queue_depth`).
    queue_depth: u32,
    /// Devices created at load time.
    precreate: u32,
    /// An explicit `max_loop` also caps what the probe creates.
    probe_limit: Option<u32>,
}

/// Index bookkeeping, under [`Registry::ctl`].
struct CtlState {
    /// One past the highest index stored in the XArray.
    end: usize,
}

impl Registry {
    /// Checks the module parameters as `loop_init()` does and creates the
    /// empty registry.
    fn new() -> Result<Arc<Self>> {
        let max_part = module_parameters::max_part.value();
        let max_loop = module_parameters::max_loop.value();
        let queue_depth = module_parameters::hw_queue_depth.value();

        let part_shift = if max_part > 0 {
            u32::BITS - (max_part as u32).leading_zeros()
        } else {
            0
        };
        if (1u64 << part_shift) > u64::from(bindings::DISK_MAX_PARTS) {
            pr_err!("max_part {} is too large\n", max_part);
            return Err(EINVAL);
        }
        let given = max_loop != MAX_LOOP_NOT_GIVEN;
        // loop.c compares the int with an unsigned long: negative is huge.
        if given && (max_loop < 0 || max_loop as u64 > 1u64 << (MINORBITS - part_shift)) {
            pr_err!("max_loop {} is out of range\n", max_loop);
            return Err(EINVAL);
        }
        if queue_depth < 1 {
            pr_err!("hw_queue_depth {} is invalid\n", queue_depth);
            return Err(EINVAL);
        }
        let (precreate, probe_limit) = if given {
            (max_loop as u32, (max_loop > 0).then_some(max_loop as u32))
        } else {
            (DEFAULT_MAX_LOOP, None)
        };
        Arc::pin_init(
            try_pin_init!(Registry {
                ctl <- kernel::new_mutex!(CtlState { end: 0 }),
                devices <- XArray::new(AllocKind::Alloc),
                part_shift,
                queue_depth: queue_depth as u32,
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
            let xa = self.devices.lock();
            let index = if index >= 0 {
                if xa.get(index as usize).is_some() {
                    return Err(EEXIST);
                }
                index as u32
            } else {
                // idr_alloc(&loop_index_idr, lo, 0, 0): the lowest free.
                (0..=i32::MAX as u32)
                    .find(|&i| xa.get(i as usize).is_none())
                    .ok_or(ENOSPC)?
            };
            drop(xa);
            let dev = LoopDevice::new(index, self)?;
            self.devices
                .lock()
                .store(index as usize, dev.clone(), GFP_KERNEL)?;
            ctl.end = ctl.end.max(index as usize + 1);
            dev
        };

        if let Err(e) = dev.disk.add(dev.clone()) {
            self.forget(dev.number);
            return Err(e);
        }

        let _ctl = self.ctl.lock();
        dev.visible.store(true, Ordering::Relaxed);
        Ok(dev.number)
    }

    /// Drops the XArray's reference to `index`.
    fn forget(&self, index: u32) {
        let mut ctl = self.ctl.lock();
        let mut xa = self.devices.lock();
        drop(xa.remove(index as usize));
        if index as usize + 1 == ctl.end {
            while ctl.end > 0 && xa.get(ctl.end - 1).is_none() {
                ctl.end -= 1;
            }
        }
    }

    /// The visible device at `index`.
    fn lookup(&self, index: usize) -> Option<Arc<LoopDevice>> {
        let xa = self.devices.lock();
        let dev = xa.get(index)?;
        dev.visible.load(Ordering::Relaxed).then(|| dev.into())
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
            dev.visible.store(false, Ordering::Relaxed);
            dev
        };
        if let Err(e) = dev.mark_deleting() {
            let _ctl = self.ctl.lock();
            dev.visible.store(true, Ordering::Relaxed);
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
            for i in 0..ctl.end {
                if let Some(dev) = xa.get(i) {
                    // A race here only makes a new device, as in loop.c.
                    if dev.visible.load(Ordering::Relaxed) && dev.state() == LoState::Unbound {
                        return Ok(i as u32);
                    }
                }
            }
        }
        self.add(-1)
    }

    /// Removes every device, at module unload (nothing can open one then).
    fn remove_all(&self) {
        let end = self.ctl.lock().end;
        for i in 0..end {
            let dev = self.devices.lock().get(i).map(Arc::from);
            if let Some(dev) = dev {
                dev.disk.remove();
                self.forget(dev.number);
            }
        }
    }
}

impl BlkdevProbe for Registry {
    /// `loop_probe()`: an open of a `/dev/loopN` node without a device
    /// creates it, unless an explicit `max_loop` caps the index.
    fn probe(&self, minor: u32) {
        let index = minor >> self.part_shift;
        if self.probe_limit.is_some_and(|limit| index >= limit) {
            return;
        }
        let _ = self.add(index as i32);
    }
}

/// `lo_state`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
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
    fn from_u8(v: u8) -> Self {
        match v {
            1 => LoState::Bound,
            2 => LoState::Rundown,
            3 => LoState::Deleting,
            _ => LoState::Unbound,
        }
    }
}

/// The configuration of a loop device, under [`LoopDevice::lock`]
/// (`loop.c`'s `lo_mutex`).
pub(crate) struct Config {}

/// One loop device: `/dev/loopN`.
#[pin_data]
pub(crate) struct LoopDevice {
    /// `N`.
    number: u32,
    /// `lo_mutex`: serializes configuration changes and state transitions.
    #[pin]
    lock: Mutex<Config>,
    /// `lo_state`, written under `lock`, readable without it.
    state: AtomicU8,
    /// `idr_visible`, written under the registry's `ctl` lock.
    visible: AtomicBool,
    /// The gendisk and its tag set.
    #[pin]
    disk: Disk<LoopDevice>,
}

impl LoopDevice {
    fn new(index: u32, reg: &Registry) -> Result<Arc<Self>> {
        let params = DiskParams {
            major: LOOP_MAJOR,
            // `i << part_shift` in loop.c's int arithmetic; add_disk()
            // rejects what does not fit.
            first_minor: (index as i32).wrapping_shl(reg.part_shift) as u32,
            minors: 1 << reg.part_shift,
            nr_hw_queues: 1,
            queue_depth: reg.queue_depth,
            max_hw_sectors: LOOP_MAX_HW_SECTORS,
            suppress_part_scan: reg.part_shift == 0,
        };
        Arc::pin_init(
            try_pin_init!(LoopDevice {
                number: index,
                lock <- kernel::new_mutex!(Config {}),
                state: AtomicU8::new(LoState::Unbound as u8),
                visible: AtomicBool::new(false),
                disk <- Disk::new(params, fmt!("loop{}", index)),
            }),
            GFP_KERNEL,
        )
    }

    fn state(&self) -> LoState {
        LoState::from_u8(self.state.load(Ordering::Acquire))
    }

    fn set_state(&self, _cfg: &Config, state: LoState) {
        self.state.store(state as u8, Ordering::Release);
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

    /// `lo_ioctl()`.
    fn do_ioctl(&self, _bdev: &BlockDevice, mode: OpenMode, cmd: u32, arg: usize) -> Result<i32> {
        let may_write = mode.write() || sys::capable_sys_admin();
        match cmd {
            uapi::LOOP_CLR_FD => self.require_bound().map(|_| 0),
            uapi::LOOP_GET_STATUS | uapi::LOOP_GET_STATUS64 => {
                if arg == 0 {
                    return Err(EINVAL);
                }
                self.require_bound().map(|_| 0)
            }
            uapi::LOOP_SET_STATUS | uapi::LOOP_SET_STATUS64 => {
                if !may_write {
                    return Err(EPERM);
                }
                self.require_bound().map(|_| 0)
            }
            uapi::LOOP_SET_BLOCK_SIZE | uapi::LOOP_SET_CAPACITY | uapi::LOOP_SET_DIRECT_IO => {
                if !may_write {
                    return Err(EPERM);
                }
                self.require_bound().map(|_| 0)
            }
            // The rest of lo_ioctl(): lo_simple_ioctl() answers EINVAL.
            _ => Err(EINVAL),
        }
    }

    fn require_bound(&self) -> Result {
        let _cfg = self.lock.lock();
        if self.state() != LoState::Bound {
            return Err(ENXIO);
        }
        Ok(())
    }
}

impl DiskOps for LoopDevice {
    type Cmd = ();

    /// `lo_open()`: a device on its way out cannot be opened.
    fn open(&self, _disk: &GenDisk, _mode: OpenMode) -> Result {
        let _cfg = self.lock.lock();
        match self.state() {
            LoState::Deleting | LoState::Rundown => Err(ENXIO),
            _ => Ok(()),
        }
    }

    fn release(&self, _disk: &ReleasingDisk<'_>) {}

    fn ioctl(&self, bdev: &BlockDevice, mode: OpenMode, cmd: u32, arg: usize) -> Result<i32> {
        self.do_ioctl(bdev, mode, cmd, arg)
    }

    fn compat_ioctl(&self, bdev: &BlockDevice, mode: OpenMode, cmd: u32, arg: usize) -> Result<i32> {
        match cmd {
            uapi::LOOP_SET_STATUS
            | uapi::LOOP_GET_STATUS
            | uapi::LOOP_SET_CAPACITY
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

    fn queue_rq(&self, rq: Request<Self>, _last: bool) {
        if self.state() != LoState::Bound {
            rq.end(Status::IOERR);
            return;
        }
        rq.end(Status::IOERR);
    }

    fn complete(rq: Request<Self>) {
        rq.end(Status::OK);
    }
}
