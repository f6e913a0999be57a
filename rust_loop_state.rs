// SPDX-License-Identifier: GPL-2.0

//! The state of one loop device and the one path that changes it.
//!
//! A device's state is read in three places, each with its own copy:
//!
//! - [`Config`], the configuration, under `lo_mutex` ([`DevState::lock`]):
//!   what the ioctls read and change;
//! - [`Shown`], under a spinlock (`loop.c`'s `lo_lock`): what sysfs shows
//!   and what the loop-on-loop chain check of another device reads; it must
//!   never wait for `lo_mutex`, which is held while the `loop/` sysfs group
//!   is removed;
//! - the request path's snapshot ([`Io`]), inside the disk, changed only
//!   with the queue frozen and read by every request without a lock;
//!
//! and the state machine [`LoState`] (`lo_state`), written under `lo_mutex`
//! and read without it.
//!
//! Nothing outside this file writes any of them, but through the closures
//! that its update methods run. A handler takes `lo_mutex`
//! as a [`Locked`] guard, which reads the configuration and changes it only
//! through [`Locked::update`] (what the request path does not read) or
//! [`Locked::update_frozen`] (with the queue frozen: the snapshot is rebuilt
//! from the new configuration), and moves the state only through the
//! transition methods ([`Locked::bind`], [`Locked::run_down`],
//! [`Locked::unbind`], [`Locked::delete`]). Either update leaves the sysfs
//! view stale until [`Locked::commit`], which a handler calls where
//! `loop.c`'s order wants it, and which the guard's drop does anyway, still
//! under `lo_mutex`: no handler can forget to republish or to rebuild.
//!
//! The detach ([`DevState::stop_io`], [`Locked::detach`]) is the one
//! sequence that runs partly without `lo_mutex`, as `__loop_clr_fd()` does.

use crate::sys::{
    disk::{Disk, DiskOps, GenDisk, Limits, Queue, ReleasingDisk},
    disk_io::IoGuard,
    file::{BackingFile, DioAlign},
    request::RwTarget,
    sync::LockKillable,
    sysfs::SysfsBuf,
    uapi, ModuleRef,
};
use core::{fmt::Write, ops::Deref};
use kernel::{
    block::SECTOR_SIZE,
    prelude::*,
    sync::{
        atomic::{Acquire, Atomic, Release},
        Mutex, MutexGuard, SpinLock,
    },
};

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
    #[inline]
    fn from_i32(v: i32) -> Self {
        match v {
            1 => LoState::Bound,
            2 => LoState::Rundown,
            3 => LoState::Deleting,
            _ => LoState::Unbound,
        }
    }
}

/// The configuration of a loop device, under `lo_mutex`.
pub(crate) struct Config {
    /// `lo_backing_file`.
    pub(crate) file: Option<BackingFile>,
    /// `lo_offset`.
    pub(crate) offset: u64,
    /// `lo_sizelimit`.
    pub(crate) sizelimit: u64,
    /// `lo_flags`.
    pub(crate) flags: u32,
    /// `lo_file_name`.
    pub(crate) file_name: [u8; uapi::LO_NAME_SIZE],
    /// `lo_min_dio_size` and `lo_dio_mem_align`.
    pub(crate) dio_align: DioAlign,
    /// The backing file's page-cache allocation mask before binding.
    pub(crate) old_gfp: u32,
    /// A bound device keeps the module loaded.
    pub(crate) module_ref: Option<ModuleRef>,
}

impl Config {
    /// The configuration of an unbound device.
    pub(crate) fn new() -> Self {
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

    /// What of the configuration the request path's snapshot is built from
    /// ([`Io::bound`]): the file, the offset and two flags.
    fn io_key(&self) -> (*const kernel::bindings::file, u64, u32) {
        let file = self
            .file
            .as_ref()
            .map_or(core::ptr::null(), |f| f.as_ptr().cast_const());
        let flags = self.flags & (uapi::LO_FLAGS_DIRECT_IO | uapi::LO_FLAGS_READ_ONLY);
        (file, self.offset, flags)
    }
}

/// What the request path reads of a bound device: changed only with the
/// queue frozen, read by every request without a lock.
pub(crate) struct Io {
    /// The backing file; `None` while unbound.
    file: Option<BackingFile>,
    /// `lo_offset`.
    offset: u64,
    /// `LO_FLAGS_DIRECT_IO`.
    direct: bool,
    /// `LO_FLAGS_READ_ONLY`.
    read_only: bool,
}

impl Io {
    /// Whether requests go to the backing file with direct I/O.
    pub(crate) fn direct(&self) -> bool {
        self.direct
    }

    /// Whether every request that changes data fails (`op_is_write()`).
    pub(crate) fn read_only(&self) -> bool {
        self.read_only
    }

    /// The request path of an unbound device: every request fails.
    pub(crate) fn unbound() -> Self {
        Io {
            file: None,
            offset: 0,
            direct: false,
            read_only: true,
        }
    }

    /// The request path for the configuration `cfg`.
    pub(crate) fn bound(cfg: &Config) -> Self {
        Io {
            file: cfg.file.clone(),
            offset: cfg.offset,
            direct: cfg.flags & uapi::LO_FLAGS_DIRECT_IO != 0,
            read_only: cfg.flags & uapi::LO_FLAGS_READ_ONLY != 0,
        }
    }
}

impl RwTarget for Io {
    fn target(&self) -> Option<(&BackingFile, u64)> {
        self.file.as_ref().map(|f| (f, self.offset))
    }
}

impl Config {
    /// `lo_can_use_dio()` with logical block size `lbs`.
    pub(crate) fn can_use_dio(&self, file: &BackingFile, lbs: u32) -> bool {
        let min = self.dio_align.min_size.max(1);
        file.can_odirect() && lbs >= min && self.offset & u64::from(min - 1) == 0
    }

    /// `loop_update_dio()`: drops `LO_FLAGS_DIRECT_IO` when it cannot work.
    pub(crate) fn update_dio(&mut self, lbs: u32) {
        if self.flags & uapi::LO_FLAGS_DIRECT_IO != 0 {
            if let Some(file) = &self.file {
                if !self.can_use_dio(file, lbs) {
                    self.flags &= !uapi::LO_FLAGS_DIRECT_IO;
                }
            }
        }
    }

    /// `loop_set_dma_limit()`, for the flags `flags`.
    pub(crate) fn set_dma_limit(&self, flags: u32, lim: &mut Limits) {
        if flags & uapi::LO_FLAGS_DIRECT_IO != 0 {
            lim.set_dma_alignment(self.dio_align.mem_mask.max(SECTOR_SIZE - 1));
        } else {
            lim.set_dma_alignment(SECTOR_SIZE - 1);
        }
    }

    /// `loop_update_limits()`: queue limits for the backing file, with
    /// logical block size `bsize` (0: 512, or the direct-I/O minimum).
    pub(crate) fn update_limits(&self, file: &BackingFile, lim: &mut Limits, bsize: u32) {
        let bsize = match bsize {
            0 if self.flags & uapi::LO_FLAGS_DIRECT_IO != 0 => self.dio_align.min_size,
            0 => SECTOR_SIZE,
            b => b,
        };
        let (max_discard, granularity) = file.discard_config();
        lim.set_block_size(bsize);
        self.set_dma_limit(self.flags, lim);
        lim.set_features(
            file.has_fsync() && self.flags & uapi::LO_FLAGS_READ_ONLY == 0,
            file.rotational(),
        );
        lim.set_discard(max_discard, granularity);
    }

    /// `loop_assign_backing_file()`: takes `file` as the backing store.
    pub(crate) fn assign_backing_file(&mut self, file: BackingFile) {
        self.old_gfp = file.limit_gfp();
        if file.o_direct() {
            self.flags |= uapi::LO_FLAGS_DIRECT_IO;
        }
        self.dio_align = file.dio_align();
        self.file = Some(file);
    }

    /// `loop_set_size()`: the capacity of `disk` from the configuration.
    pub(crate) fn set_size(&self, disk: &GenDisk) {
        if let Some(file) = &self.file {
            disk.set_capacity_and_notify(calculate_size(file, self.offset, self.sizelimit));
        }
    }
}

/// The size of the device in 512-byte sectors, as `lo_calculate_size()`:
/// the backing size less the offset, capped by the size limit.
pub(crate) fn calculate_size(file: &BackingFile, offset: u64, sizelimit: u64) -> u64 {
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

/// What sysfs and the loop-on-loop chain check read: the configuration as
/// last committed. The device is bound for them while `file` is set.
struct Shown {
    file: Option<BackingFile>,
    offset: u64,
    sizelimit: u64,
    flags: u32,
}

/// The state of a loop device: the configuration under `lo_mutex`, the
/// sysfs view and `lo_state`. Only this file reads or writes its fields.
#[pin_data]
pub(crate) struct DevState {
    /// `lo_mutex`: serializes configuration changes and state transitions.
    #[pin]
    lock: Mutex<Config>,
    /// `lo_lock`: the sysfs view.
    #[pin]
    shown: SpinLock<Shown>,
    /// `lo_state`, written under `lock`, readable without it.
    state: Atomic<i32>,
}

impl DevState {
    /// The state of a new, unbound device.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(DevState {
            lock <- kernel::new_mutex!(Config::new(), "DevState::lo_mutex"),
            shown <- kernel::new_spinlock!(
                Shown {
                    file: None,
                    offset: 0,
                    sizelimit: 0,
                    flags: 0,
                },
                "DevState::lo_lock"
            ),
            state: Atomic::new(LoState::Unbound as i32),
        })
    }

    /// `lo_state`, without `lo_mutex` (as the request path and
    /// `LOOP_CTL_GET_FREE` read it).
    #[inline]
    pub(crate) fn state(&self) -> LoState {
        LoState::from_i32(self.state.load(Acquire))
    }

    /// Takes `lo_mutex` (`mutex_lock()`): for the teardown paths, which
    /// must not give up.
    pub(crate) fn lock(&self) -> Locked<'_> {
        Locked {
            st: self,
            cfg: self.lock.lock(),
            stale: false,
        }
    }

    /// Takes `lo_mutex` unless the task is killed meanwhile
    /// (`mutex_lock_killable()`, `EINTR`): for every wait of a user task.
    pub(crate) fn lock_killable(&self) -> Result<Locked<'_>> {
        Ok(Locked {
            st: self,
            cfg: self.lock.lock_killable()?,
            stale: false,
        })
    }

    /// The next file of a loop-on-loop chain through this device, for
    /// `loop_validate_file()`: its backing file while bound, else `EINVAL`.
    /// A device in rundown still has its file until its last close, but is
    /// no backing store any more (`lo_state != Lo_bound`).
    pub(crate) fn chain_next(&self) -> Result<BackingFile> {
        if self.state() != LoState::Bound {
            return Err(EINVAL);
        }
        self.shown.lock().file.clone().ok_or(EINVAL)
    }

    /// The first step of the detach (`__loop_clr_fd()`), at the last close
    /// of a device in `Rundown`, without `lo_mutex`: sysfs and the chain
    /// checks stop seeing the backing file, then the request path is
    /// unbound ([`Disk::release_io`]). No request is in flight (this is
    /// the last close), so the queue is not frozen, as in `loop.c`;
    /// [`Disk::release_io`] checks it.
    pub(crate) fn stop_io<T: DiskOps<Io = Io>>(&self, disk: &Disk<T>, gendisk: &ReleasingDisk<'_>) {
        self.shown.lock().file = None;
        if let Ok(mut io) = disk.release_io(gendisk) {
            *io.io() = Io::unbound();
        }
    }

    /// Copies the configuration to the sysfs view.
    fn publish(&self, cfg: &Config) {
        let mut shown = self.shown.lock();
        shown.file = cfg.file.clone();
        shown.offset = cfg.offset;
        shown.sizelimit = cfg.sizelimit;
        shown.flags = cfg.flags;
    }
}

/// What [`Locked::detach`] hands over, to be released outside `lo_mutex`.
pub(crate) struct Detached {
    /// The backing file.
    pub(crate) file: Option<BackingFile>,
    /// Its page-cache allocation mask before binding.
    pub(crate) old_gfp: u32,
    /// The reference on the module that the bound device held.
    pub(crate) module_ref: Option<ModuleRef>,
}

/// `lo_mutex`, held: reads the configuration ([`Deref`]) and is the only
/// way to change it or the state.
///
/// # Invariants
///
/// `stale` is set when the configuration changed since the sysfs view was
/// last published (apart from the reset of [`Locked::detach`], which the
/// view shows from [`Locked::unbind`] on); the view is published again
/// before `lo_mutex` is released.
pub(crate) struct Locked<'a> {
    st: &'a DevState,
    cfg: MutexGuard<'a, Config>,
    stale: bool,
}

impl Deref for Locked<'_> {
    type Target = Config;

    fn deref(&self) -> &Config {
        &self.cfg
    }
}

impl Locked<'_> {
    /// `lo_state`.
    pub(crate) fn state(&self) -> LoState {
        self.st.state()
    }

    /// Changes what the request path does not read (any flag but
    /// `LO_FLAGS_DIRECT_IO` and `LO_FLAGS_READ_ONLY`, the name, ...); the
    /// sysfs view follows at [`Self::commit`]. A change of what the request
    /// path reads belongs in [`Self::update_frozen`]: here it warns.
    pub(crate) fn update<R>(&mut self, f: impl FnOnce(&mut Config) -> R) -> R {
        let key = self.cfg.io_key();
        let r = f(&mut self.cfg);
        kernel::warn_on!(self.cfg.io_key() != key);
        // INVARIANT: the configuration may have changed.
        self.stale = true;
        r
    }

    /// Changes the configuration with the queue frozen (`io`): `f` gets
    /// the frozen queue; when it succeeds, the request path's snapshot is
    /// rebuilt from the new configuration, before the queue is unfrozen.
    /// `f` must not change anything before it fails. The sysfs view follows
    /// at [`Self::commit`].
    pub(crate) fn update_frozen<T: DiskOps<Io = Io>, R>(
        &mut self,
        io: &mut IoGuard<'_, T>,
        f: impl FnOnce(&mut Config, &Queue) -> Result<R>,
    ) -> Result<R> {
        let r = f(&mut self.cfg, io.queue())?;
        *io.io() = Io::bound(&self.cfg);
        // INVARIANT: the configuration may have changed.
        self.stale = true;
        Ok(r)
    }

    /// Binds an unbound device to the configuration `new` (`Unbound` to
    /// `Bound` through [`Self::bind`]): the request path's snapshot is
    /// built from it without freezing the queue, as `loop_configure()`
    /// binds, since no request reads a snapshot before this.
    pub(crate) fn bind_config<T: DiskOps<Io = Io>>(
        &mut self,
        disk: &Disk<T>,
        gendisk: &GenDisk,
        new: Config,
    ) -> Result {
        disk.bind_io(gendisk, |io| {
            *io = Io::bound(&new);
            Ok(())
        })?;
        *self.cfg = new;
        // INVARIANT: the configuration changed.
        self.stale = true;
        Ok(())
    }

    /// Publishes the configuration to the sysfs view now, rather than when
    /// the guard is dropped.
    pub(crate) fn commit(&mut self) {
        if self.stale {
            self.st.publish(&self.cfg);
            // INVARIANT: just published.
            self.stale = false;
        }
    }

    /// Moves from `from` to `to`, publishing the configuration first.
    fn move_to(&mut self, from: LoState, to: LoState) {
        kernel::warn_on!(self.state() != from);
        self.commit();
        self.st.state.store(to as i32, Release);
    }

    /// `Unbound` to `Bound`, at the end of `loop_configure()`.
    pub(crate) fn bind(&mut self) {
        self.move_to(LoState::Unbound, LoState::Bound);
    }

    /// `Bound` to `Rundown`: the device detaches at its last close, and
    /// cannot be opened meanwhile.
    pub(crate) fn run_down(&mut self) {
        self.move_to(LoState::Bound, LoState::Rundown);
    }

    /// `Unbound` to `Deleting`, for `LOOP_CTL_REMOVE`.
    pub(crate) fn delete(&mut self) {
        self.move_to(LoState::Unbound, LoState::Deleting);
    }

    /// The detach of a device in `Rundown`, after [`DevState::stop_io`]:
    /// resets the offset, the size limit and the name, and hands over the
    /// backing file and the module reference. The sysfs view is left as it
    /// is (no file since `stop_io`), until [`Self::unbind`].
    pub(crate) fn detach(&mut self) -> Detached {
        let cfg = &mut self.cfg;
        cfg.offset = 0;
        cfg.sizelimit = 0;
        cfg.file_name = [0; uapi::LO_NAME_SIZE];
        Detached {
            file: cfg.file.take(),
            old_gfp: cfg.old_gfp,
            module_ref: cfg.module_ref.take(),
        }
    }

    /// `Rundown` to `Unbound`, at the end of the detach: clears the flags.
    /// The caller tells `LOOP_CTL_GET_FREE` that the device is free again.
    pub(crate) fn unbind(&mut self) {
        self.cfg.flags = 0;
        // INVARIANT: the configuration changed.
        self.stale = true;
        self.move_to(LoState::Rundown, LoState::Unbound);
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        // `lo_mutex` is released after this, when `cfg` is dropped.
        self.commit();
    }
}

impl DevState {
    /// The attribute `name` of the `loop/` sysfs group (`loop.c`'s
    /// `loop_attrs`), from the sysfs view.
    pub(crate) fn show_attr(&self, name: &CStr, out: &mut SysfsBuf<'_>) -> Result {
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
