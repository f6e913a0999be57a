// SPDX-License-Identifier: GPL-2.0

//! The control plane: the [`Registry`] of loop devices (`loop.c`'s
//! `loop_index_idr` under `loop_ctl_mutex`) and everything that creates or
//! removes one: `LOOP_CTL_ADD`, `LOOP_CTL_REMOVE` and `LOOP_CTL_GET_FREE`
//! on `/dev/loop-control` (misc minor 237), answered exactly as
//! `loop_control_ioctl()` does; the devices made at load time (`max_loop`);
//! the legacy probe of the block major (`loop_probe()`); and the removal of
//! every device at unload.

use crate::{
    rust_loop_dev::LoopDevice,
    rust_loop_shared::Shared,
    sys::{blkdev::BlkdevProbe, misc::MiscIoctl, sync::LockKillable, uapi, xarray::AllocXArray},
};
use kernel::{
    prelude::*,
    sync::{Arc, Mutex},
};

/// Where the loop devices are indexed: an allocating XArray
/// ([`AllocXArray`], `loop.c`'s `loop_index_idr`), whose mark is
/// `idr_visible`.
///
/// An index is reserved as soon as it is taken, the device is stored once
/// made, and the index is freed only after its disk is deleted; a device
/// is *visible* (marked) only while its disk is added, so the control
/// device never hands out a half-made or half-gone device.
#[pin_data]
pub(crate) struct Registry {
    /// `loop_ctl_mutex`: serializes index allocation and visibility
    /// changes (the XArray's own lock covers single operations).
    #[pin]
    ctl_mutex: Mutex<()>,
    #[pin]
    devices: AllocXArray<LoopDevice>,
    shared: Arc<Shared>,
    /// Devices created at load time.
    precreate: u32,
    /// An explicit `max_loop` also caps what the probe creates.
    probe_limit: Option<u32>,
}

impl Registry {
    /// The empty registry of devices sharing `shared`.
    pub(crate) fn new(
        shared: Arc<Shared>,
        precreate: u32,
        probe_limit: Option<u32>,
    ) -> Result<Arc<Self>> {
        Arc::pin_init(
            try_pin_init!(Registry {
                ctl_mutex <- kernel::new_mutex!((), "Registry::ctl_mutex"),
                devices <- AllocXArray::new(),
                shared,
                precreate,
                probe_limit,
            }),
            GFP_KERNEL,
        )
    }

    /// Creates the devices asked for at load time (`max_loop`).
    pub(crate) fn precreate(&self) {
        for i in 0..self.precreate {
            // As loop_init(), which ignores loop_add() failures.
            let _ = self.add(i as i32);
        }
    }

    /// `LOOP_CTL_ADD`: creates `loop<index>`, or the lowest free index when
    /// `index` is negative; returns the index.
    pub(crate) fn add(&self, index: i32) -> Result<u32> {
        let dev = {
            let _ctl = self.ctl_mutex.lock_killable()?;
            // idr_alloc(): a taken index is EEXIST for loop_add().
            let index = match self
                .devices
                .reserve((index >= 0).then_some(index as u32), i32::MAX as u32)
            {
                Err(e) if e == EBUSY => return Err(EEXIST),
                r => r?,
            };
            let dev = match LoopDevice::new(index, &self.shared) {
                Ok(dev) => dev,
                Err(e) => {
                    self.devices.release(index);
                    return Err(e);
                }
            };
            if self.devices.fill(index, dev.clone()).is_err() {
                self.devices.release(index);
                return Err(ENOMEM);
            }
            dev
        };

        if let Err(e) = dev.disk.add(dev.clone()) {
            self.forget(dev.number);
            return Err(e);
        }

        let _ctl = self.ctl_mutex.lock();
        self.devices.set_marked(dev.number, true);
        self.shared.free.lower(dev.number);
        Ok(dev.number)
    }

    /// Drops the registry's reference to `index` and frees the index.
    fn forget(&self, index: u32) {
        let dev = {
            let _ctl = self.ctl_mutex.lock();
            self.devices.release(index)
        };
        // The last reference may go here: drop it outside the lock.
        drop(dev);
    }

    /// `LOOP_CTL_REMOVE`.
    pub(crate) fn remove(&self, index: i32) -> Result {
        if index < 0 {
            kernel::pr_warn_once!("deleting an unspecified loop device is not supported.\n");
            return Err(EINVAL);
        }
        let index = index as u32;
        // Hide the device first, so that nothing else picks it up.
        let dev = {
            let _ctl = self.ctl_mutex.lock_killable()?;
            let dev = self
                .devices
                .get(index)
                .filter(|_| self.devices.marked(index))
                .ok_or(ENODEV)?;
            self.devices.set_marked(index, false);
            dev
        };
        if let Err(e) = dev.mark_deleting() {
            let _ctl = self.ctl_mutex.lock();
            self.devices.set_marked(index, true);
            self.shared.free.lower(index);
            return Err(e);
        }
        dev.disk.remove();
        dev.unpublish();
        self.forget(index);
        Ok(())
    }

    /// `LOOP_CTL_GET_FREE`: the lowest visible unbound device, else a new
    /// one. The walk starts at the [`FreeHint`].
    pub(crate) fn get_free(&self) -> Result<u32> {
        {
            let _ctl = self.ctl_mutex.lock_killable()?;
            let hint = &self.shared.free;
            // A race here only makes a new device, as in loop.c.
            let found = self
                .devices
                .find_marked_where(hint.begin(), |dev| dev.is_free());
            // None below the one found; none at all otherwise, until a
            // device becomes free (the new one below lowers the hint).
            hint.end(found.unwrap_or(u32::MAX));
            if let Some(index) = found {
                return Ok(index);
            }
        }
        self.add(-1)
    }

    /// Removes every device, at module unload (nothing can open one then).
    pub(crate) fn remove_all(&self) {
        while let Some((index, dev)) = self.devices.first() {
            dev.disk.remove();
            dev.unpublish();
            drop(dev);
            self.forget(index);
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

impl MiscIoctl for Registry {
    /// `loop_control_ioctl()`.
    fn ioctl(&self, cmd: u32, arg: usize) -> Result<isize> {
        // The argument is an int in loop.c: `loop_add(parm)` and
        // `loop_control_remove(parm)` take the low 32 bits, signed.
        let index = arg as i32;
        match cmd {
            uapi::LOOP_CTL_ADD => self.add(index).map(|i| i as isize),
            uapi::LOOP_CTL_REMOVE => self.remove(index).map(|()| 0),
            uapi::LOOP_CTL_GET_FREE => self.get_free().map(|i| i as isize),
            _ => Err(ENOSYS),
        }
    }
}
