// SPDX-License-Identifier: GPL-2.0

//! rust_loop: a loop block device driver in Rust, a drop-in for `loop.ko`.
//!
//! This is the crate root: the module, its parameters and their checks,
//! what it registers and in which order. The rest is one file per concept
//! (`Documentation/architecture.rst` draws the whole):
//!
//! - `rust_loop_ctl.rs`: the control plane: the registry of devices,
//!   `/dev/loop-control`, the devices made at load time, the probe;
//! - `rust_loop_dev.rs`: one loop device, its block device callbacks and
//!   the transitions of its state machine (configure, clear, detach);
//! - `rust_loop_shared.rs`: what every device shares (`loop.c`'s
//!   globals);
//! - `rust_loop_state.rs`: a device's configuration, its sysfs view, its
//!   state, and the one path that changes them;
//! - `rust_loop_ioctl.rs`: the ioctls of a device, their checks and the
//!   `loop_info` conversions;
//! - `rust_loop_io.rs`: the request path, `queue_rq` to the backing file;
//! - `sys.rs` and `sys/`: every `unsafe` line, as small abstractions over
//!   the C API.

mod rust_loop_ctl;
mod rust_loop_dev;
mod rust_loop_io;
mod rust_loop_ioctl;
mod rust_loop_shared;
mod rust_loop_state;
mod sys;

use kernel::{bindings, prelude::*, sync::Arc};
use rust_loop_ctl::Registry;
use rust_loop_shared::{FreeHint, Shared, LOOP_MAJOR, MINORBITS};
use sys::{blkdev::BlkdevMajor, debugfs::Dir, misc::FixedMinorMisc};

/// `max_loop`'s default, as loop.c's: the kernel's
/// `CONFIG_BLK_DEV_LOOP_MIN_COUNT` (devices made at load time), or its
/// Kconfig default where the kernel has no loop driver configured.
#[cfg(CONFIG_BLK_DEV_LOOP)]
const LOOP_MIN_COUNT: i32 = bindings::CONFIG_BLK_DEV_LOOP_MIN_COUNT as i32;
#[cfg(not(CONFIG_BLK_DEV_LOOP))]
const LOOP_MIN_COUNT: i32 = 8;

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
        super::LOOP_MIN_COUNT,
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
    // Not in loop.c, which has a single hardware queue, as here by default.
    crate::sys::param::int_param!(
        nr_hw_queues,
        1,
        0,
        "Hardware queues per loop device. Default: 1; 0: one per CPU"
    );
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
        let registry = registry_from_params()?;
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

/// Checks the module parameters as `loop_init()` does and creates the
/// empty registry.
fn registry_from_params() -> Result<Arc<Registry>> {
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
        0 => kernel::cpu::nr_cpu_ids(),
        n => n as u32,
    };
    // An explicit max_loop also caps the devices that opening a node
    // creates; the default does not.
    let precreate = max_loop as u32;
    let probe_limit = (params::max_loop.given() && max_loop > 0).then_some(precreate);
    let shared = Arc::pin_init(
        try_pin_init!(Shared {
            validate <- kernel::new_mutex!((), "Shared::validate"),
            part_shift,
            queue_depth: queue_depth as u32,
            nr_hw_queues,
            debugfs: Dir::new(c"rust_loop"),
            free <- FreeHint::new(),
        }),
        GFP_KERNEL,
    )?;
    Registry::new(shared, precreate, probe_limit)
}
