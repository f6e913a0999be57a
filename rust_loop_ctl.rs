// SPDX-License-Identifier: GPL-2.0

//! `/dev/loop-control`: the misc device (minor 237) through which user
//! space adds, removes and finds free loop devices, answering exactly as
//! `loop.c`'s `loop_control_ioctl()` does. The devices themselves are the
//! [`Registry`]'s business; this file only decodes the commands.

use crate::{sys::misc::MiscIoctl, sys::uapi, Registry};
use kernel::prelude::*;

impl MiscIoctl for Registry {
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
