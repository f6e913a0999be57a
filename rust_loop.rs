// SPDX-License-Identifier: GPL-2.0

//! rust_loop: a loop block device driver in Rust, a drop-in for `loop.ko`.
//!
//! This is the crate root. It owns the module: its metadata, parameters and
//! the lifetime of everything the driver registers.

use kernel::prelude::*;

module! {
    type: RustLoop,
    name: "rust_loop",
    authors: ["rust_loop developers"],
    description: "Loopback block device support, in Rust",
    license: "GPL",
}

/// The loaded module.
struct RustLoop;

impl kernel::Module for RustLoop {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("module loaded\n");
        Ok(RustLoop)
    }
}

impl Drop for RustLoop {
    fn drop(&mut self) {
        pr_info!("module unloaded\n");
    }
}
