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
    rust_loop_state::LoState,
    sys::{blkdev::BlkdevProbe, misc::MiscIoctl, uapi},
    Shared,
};
use kernel::{
    prelude::*,
    sync::{Arc, Mutex},
};

/// A device in the registry.
struct Entry {
    dev: Arc<LoopDevice>,
    /// `idr_visible`: the control device may hand it out.
    visible: bool,
}

/// The registered devices, in ascending index order.
struct Devices {
    entries: KVec<Entry>,
}

impl Devices {
    /// The position of `index`, or where it would go.
    fn find(&self, index: u32) -> core::result::Result<usize, usize> {
        self.entries.binary_search_by_key(&index, |e| e.dev.number)
    }

    /// The lowest index not in use (`idr_alloc(..., 0, 0)`).
    fn lowest_free(&self) -> Result<u32> {
        let mut expected = 0u32;
        for e in self.entries.iter() {
            if e.dev.number != expected {
                break;
            }
            expected = expected.checked_add(1).ok_or(ENOSPC)?;
        }
        if expected > i32::MAX as u32 {
            return Err(ENOSPC);
        }
        Ok(expected)
    }

    /// Adds `dev`, not visible yet; its index must be free.
    fn insert(&mut self, dev: Arc<LoopDevice>) -> Result {
        let Err(pos) = self.find(dev.number) else {
            return Err(EEXIST);
        };
        self.entries.reserve(1, GFP_KERNEL)?;
        self.entries
            .insert_within_capacity(
                pos,
                Entry {
                    dev,
                    visible: false,
                },
            )
            .map_err(|_| ENOMEM)
    }

    /// Takes the device at `index` out.
    fn remove(&mut self, index: u32) -> Option<Arc<LoopDevice>> {
        let pos = self.find(index).ok()?;
        self.entries.remove(pos).ok().map(|e| e.dev)
    }

    /// The entry of `index`.
    fn get_mut(&mut self, index: u32) -> Option<&mut Entry> {
        let pos = self.find(index).ok()?;
        self.entries.get_mut(pos)
    }
}

/// Where the loop devices are indexed.
///
/// An entry is stored as soon as its index is taken, before its disk is
/// added, and removed only after the disk is deleted; a device is
/// *visible* only in between, so the control device never hands out a
/// half-made or half-gone device.
#[pin_data]
pub(crate) struct Registry {
    /// `loop_ctl_mutex` and the devices it guards: serializes index
    /// allocation and visibility changes.
    #[pin]
    devices: Mutex<Devices>,
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
                devices <- kernel::new_mutex!(Devices { entries: KVec::new() }),
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
            let mut devices = self.devices.lock();
            let index = if index >= 0 {
                if devices.find(index as u32).is_ok() {
                    return Err(EEXIST);
                }
                index as u32
            } else {
                devices.lowest_free()?
            };
            let dev = LoopDevice::new(index, &self.shared)?;
            devices.insert(dev.clone())?;
            dev
        };

        if let Err(e) = dev.disk.add(dev.clone()) {
            self.forget(dev.number);
            return Err(e);
        }

        if let Some(e) = self.devices.lock().get_mut(dev.number) {
            e.visible = true;
        }
        Ok(dev.number)
    }

    /// Drops the registry's reference to `index`.
    fn forget(&self, index: u32) {
        let dev = self.devices.lock().remove(index);
        // The last reference may go here: drop it outside the lock.
        drop(dev);
    }

    /// `LOOP_CTL_REMOVE`.
    pub(crate) fn remove(&self, index: i32) -> Result {
        if index < 0 {
            kernel::pr_warn_once!("deleting an unspecified loop device is not supported.\n");
            return Err(EINVAL);
        }
        // Hide the device first, so that nothing else picks it up.
        let dev = {
            let mut devices = self.devices.lock();
            let e = devices
                .get_mut(index as u32)
                .filter(|e| e.visible)
                .ok_or(ENODEV)?;
            e.visible = false;
            e.dev.clone()
        };
        if let Err(e) = dev.mark_deleting() {
            if let Some(e) = self.devices.lock().get_mut(dev.number) {
                e.visible = true;
            }
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
            let devices = self.devices.lock();
            for e in devices.entries.iter() {
                // A race here only makes a new device, as in loop.c.
                if e.visible && e.dev.state() == LoState::Unbound {
                    return Ok(e.dev.number);
                }
            }
        }
        self.add(-1)
    }

    /// Removes every device, at module unload (nothing can open one then).
    pub(crate) fn remove_all(&self) {
        loop {
            let first = self.devices.lock().entries.first().map(|e| e.dev.clone());
            let Some(dev) = first else {
                break;
            };
            dev.disk.remove();
            self.forget(dev.number);
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
