// SPDX-License-Identifier: GPL-2.0

//! What every loop device shares, fixed at load time (`loop.c`'s globals):
//! the block major, the partition shift and queue shape, the lock of the
//! loop-on-loop chain check, the debugfs directory, and where
//! `LOOP_CTL_GET_FREE` starts its walk. The crate root makes it; the
//! registry and the devices read it. It depends on `sys` only.

use crate::sys::debugfs::Dir;
use kernel::{
    bindings,
    prelude::*,
    sync::{Mutex, SpinLock},
};

/// `LOOP_MAJOR`.
pub(crate) const LOOP_MAJOR: u32 = bindings::LOOP_MAJOR;
/// `MINORBITS`.
pub(crate) const MINORBITS: u32 = bindings::MINORBITS;

/// What all loop devices share: `loop.c`'s globals, fixed at load time.
#[pin_data]
pub(crate) struct Shared {
    /// `loop_validate_mutex`: serializes the changes of backing files that
    /// a loop-on-loop chain check depends on.
    #[pin]
    pub(crate) validate: Mutex<()>,
    /// `part_shift`: minors per device are `1 << part_shift`.
    pub(crate) part_shift: u32,
    /// Tags per hardware queue (`hw_queue_depth`).
    pub(crate) queue_depth: u32,
    /// Hardware queues per device.
    pub(crate) nr_hw_queues: u32,
    /// `/sys/kernel/debug/rust_loop/`.
    pub(crate) debugfs: Dir,
    /// Where `LOOP_CTL_GET_FREE` starts looking: lowered by every device
    /// that becomes free.
    #[pin]
    pub(crate) free: FreeHint,
}

/// Where `LOOP_CTL_GET_FREE` starts its walk: no visible, unbound device
/// has a lower index.
///
/// `loop.c` walks every device from index 0 for each `LOOP_CTL_GET_FREE`,
/// so binding `n` devices one after another, as Android's apexd does at
/// boot, walks `n * n / 2` devices (`make bench`'s `ctl-*` rows,
/// `Documentation/benchmark.rst`). With the hint a walk starts at the
/// device it found last time, or at a device that became free since.
///
/// Every device that becomes free (created, detached, refused removal)
/// lowers the hint ([`Self::lower`]); a walk moves it up only to where
/// it found the first free device, and not at all if a device became
/// free while it walked (it might have been passed over).
#[pin_data]
pub(crate) struct FreeHint {
    #[pin]
    inner: SpinLock<HintState>,
}

struct HintState {
    /// The lowest index a visible, unbound device may have.
    start: u32,
    /// A device became free since the current walk began.
    lowered: bool,
}

impl FreeHint {
    /// A hint for an empty registry.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(FreeHint {
            inner <- kernel::new_spinlock!(
                HintState {
                    start: 0,
                    lowered: false,
                },
                "FreeHint::inner"
            ),
        })
    }

    /// The device `index` may be free now (visible and unbound).
    pub(crate) fn lower(&self, index: u32) {
        let mut h = self.inner.lock();
        h.start = h.start.min(index);
        h.lowered = true;
    }

    /// Where a walk starts (under `loop_ctl_mutex`: one walk at a time).
    pub(crate) fn begin(&self) -> u32 {
        let mut h = self.inner.lock();
        h.lowered = false;
        h.start
    }

    /// The walk begun at [`Self::begin`] found no free device below
    /// `index`.
    pub(crate) fn end(&self, index: u32) {
        let mut h = self.inner.lock();
        if !h.lowered {
            h.start = index;
        }
    }
}
