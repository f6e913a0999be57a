// SPDX-License-Identifier: GPL-2.0

//! A blk-mq disk with the driver's own `block_device_operations`.
//!
//! `kernel::block::mq` cannot host a loop device: its gendisk has fixed
//! empty fops, no owner, a dynamic major, no private data, and no way to
//! change the capacity, the queue limits or the partitions afterwards.
//! This module provides:
//!
//! - [`DiskOps`], the driver's callbacks (open, release, ioctl, queue_rq,
//!   complete), implemented by the per-disk driver state `T`;
//! - [`Disk<T>`], the owner's handle: a tag set and a gendisk at a fixed
//!   `major:first_minor`, added with an `Arc<T>` as private data that the
//!   gendisk keeps until its last reference is gone (`free_disk`), so the
//!   driver state outlives every opener, as `loop.c`'s `lo_free_disk` does;
//! - [`GenDisk`], [`BlockDevice`] and [`Queue`], borrowed views of a live
//!   disk handed to the callbacks, with the operations a loop driver needs
//!   on them (capacity, uevents, read-only, partitions, queue limits and
//!   freezing, exclusive claims).

use super::{
    helpers,
    request::{self, Request},
};
use core::{
    cell::UnsafeCell,
    marker::PhantomData,
    mem::MaybeUninit,
    ptr, //
};
use kernel::{
    bindings,
    error::{from_err_ptr, to_result},
    ffi::{c_int, c_uint, c_ulong, c_void},
    fmt,
    prelude::*,
    static_lock_class,
    str::NullTerminatedFormatter,
    sync::{atomic::Atomic, Arc, ArcBorrow, Mutex, SpinLock},
    types::{ForeignOwnable, Opaque}, //
};

/// The mode a block device is opened with (`blk_mode_t`).
#[derive(Clone, Copy)]
pub(crate) struct OpenMode(u32);

impl OpenMode {
    /// Opened for writing (`BLK_OPEN_WRITE`).
    pub(crate) fn write(self) -> bool {
        self.0 & helpers::BLK_OPEN_WRITE != 0
    }

    /// Opened exclusively (`BLK_OPEN_EXCL`).
    pub(crate) fn exclusive(self) -> bool {
        self.0 & helpers::BLK_OPEN_EXCL != 0
    }
}

/// The callbacks of a disk whose per-disk driver state is `Self`.
///
/// The gendisk holds an `Arc<Self>` from [`Disk::add`] until it is
/// released, so `&self` is valid in every callback.
pub(crate) trait DiskOps: Send + Sync + Sized + 'static {
    /// The callbacks of the driver's disks: a `static` of the driver's,
    /// `static V: DiskVtable<D> = DiskVtable::new();`. Its address tells
    /// the driver's disks from others ([`driver_of`]).
    const VTABLE: &'static DiskVtable<Self>;

    /// State of the data path: read by every request without a lock
    /// ([`Request::io`]) while the disk is bound to it, installed without
    /// freezing the queue when it is not ([`Disk::bind_io`], as
    /// `loop_configure()` binds), changed only with the queue frozen
    /// ([`Disk::freeze_io`]), as `loop.c` changes its backing file, offset
    /// and direct-I/O flag, and unbound at the last close
    /// ([`Disk::release_io`]).
    type Io: request::RwTarget + Send + Sync;

    /// The disk of this driver state.
    fn disk(&self) -> &Disk<Self>;

    /// `fops->open`: a new opener of the whole disk or a partition.
    fn open(&self, disk: &GenDisk, mode: OpenMode) -> Result;

    /// `fops->release`, once per opener, with the disk's `open_mutex` held.
    fn release(&self, disk: &ReleasingDisk<'_>);

    /// `fops->ioctl` for commands the block layer does not handle itself.
    fn ioctl(&self, bdev: &BlockDevice, mode: OpenMode, cmd: u32, arg: usize) -> Result<i32>;

    /// `fops->compat_ioctl`, from 32-bit user space.
    fn compat_ioctl(&self, bdev: &BlockDevice, mode: OpenMode, cmd: u32, arg: usize)
        -> Result<i32>;

    /// `mq_ops->queue_rq`: the request is started; the driver ends it,
    /// now or later, through [`Request`].
    fn queue_rq(&self, rq: Request<Self>, last: bool);

    /// `mq_ops->complete`, after [`Request::read_write`].
    fn complete(rq: Request<Self>);

    /// A request deferred to a [`request::RequestWorker`], in process
    /// context.
    fn work(rq: Request<Self>);
}

/// How a [`Disk`] is built.
pub(crate) struct DiskParams {
    /// Block major number.
    pub(crate) major: u32,
    /// First minor number.
    pub(crate) first_minor: u32,
    /// Number of minors: the whole disk and its partitions.
    pub(crate) minors: u32,
    /// Hardware queues of the tag set.
    pub(crate) nr_hw_queues: u32,
    /// Tags per hardware queue.
    pub(crate) queue_depth: u32,
    /// Initial `max_hw_sectors` limit (0 for the block layer's default).
    pub(crate) max_hw_sectors: u32,
    /// Keep the kernel from scanning partitions (`GD_SUPPRESS_PART_SCAN`).
    pub(crate) suppress_part_scan: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum DiskState {
    /// Allocated, not added: `gendisk` holds our reference.
    Allocated,
    /// Being added by [`Disk::add`].
    Adding,
    /// Added to the system: `gendisk` holds our reference and an `Arc<T>`.
    Added,
    /// Deleted and our reference dropped: `gendisk` must not be touched.
    Gone,
}

/// The owner's handle on a disk: its tag set and gendisk.
///
/// # Invariants
///
/// - `tag_set` was set up by `blk_mq_alloc_tag_set` and is freed on drop.
/// - While `state` is `Allocated` or `Added`, `gendisk` points to a gendisk
///   allocated on `tag_set` on which this handle owns a reference. While it
///   is `Added`, the gendisk's `private_data` and `queue->queuedata` hold an
///   `Arc<T>` from `into_foreign`, released by `free_disk`.
#[pin_data(PinnedDrop)]
pub(crate) struct Disk<T: DiskOps> {
    #[pin]
    tag_set: Opaque<bindings::blk_mq_tag_set>,
    pub(super) gendisk: *mut bindings::gendisk,
    #[pin]
    state: SpinLock<DiskState>,
    /// Serializes [`IoGuard`](super::disk_io::IoGuard)s.
    #[pin]
    pub(super) io_lock: Mutex<()>,
    pub(super) io: UnsafeCell<T::Io>,
    /// Whether requests may read `io`: set by [`Disk::bind_io`] after
    /// writing it, cleared by [`Disk::release_io`].
    pub(super) io_bound: Atomic<bool>,
    _p: PhantomData<T>,
}

// SAFETY: the gendisk and tag set may be used and released from any thread;
// `T` is `Send + Sync`.
unsafe impl<T: DiskOps> Send for Disk<T> {}
// SAFETY: `&self` methods serialize on `state`; `io` is shared only as
// `&T::Io` (`T::Io: Sync`) while `io_bound` is set and no `IoGuard` exists;
// an `IoGuard` excludes every request's reference (its invariant) and every
// other guard or `bind_io` (`io_lock`), and `bind_io` writes `io` only while
// `io_bound` is clear, so that no request holds a reference to it.
unsafe impl<T: DiskOps> Sync for Disk<T> {}

impl<T: DiskOps> Disk<T> {
    /// Allocates the tag set and the gendisk, named by `name`, with `io` as
    /// the initial data-path state.
    pub(crate) fn new(
        p: DiskParams,
        name: fmt::Arguments<'_>,
        io: T::Io,
    ) -> impl PinInit<Self, Error> + '_ {
        let init = move |slot: *mut Self| -> Result {
            // SAFETY: `slot` is valid for writes and pinned until dropped.
            let set = Opaque::cast_into(unsafe { ptr::addr_of!((*slot).tag_set) });
            let mut ts: bindings::blk_mq_tag_set = pin_init::zeroed();
            ts.ops = &T::VTABLE.mq_ops;
            ts.nr_hw_queues = p.nr_hw_queues;
            ts.queue_depth = p.queue_depth;
            ts.numa_node = bindings::NUMA_NO_NODE;
            ts.cmd_size = request::pdu_size::<T>() as u32;
            // As loop.c: `queue_rq` only hands requests to a workqueue and
            // never blocks, so no BLK_MQ_F_BLOCKING.
            ts.flags = bindings::BLK_MQ_F_STACKING | bindings::BLK_MQ_F_NO_SCHED_BY_DEFAULT;
            // SAFETY: `set` is valid for writes and pinned.
            unsafe { set.write(ts) };
            // SAFETY: `set` holds an initialized tag set description.
            to_result(unsafe { bindings::blk_mq_alloc_tag_set(set) })?;

            let mut lim: bindings::queue_limits = pin_init::zeroed();
            lim.max_hw_sectors = p.max_hw_sectors;
            // SAFETY: `set` is an allocated tag set and `lim` a valid limits
            // template; `queuedata` is set by `add`.
            let disk = from_err_ptr(unsafe {
                bindings::__blk_mq_alloc_disk(
                    set,
                    &mut lim,
                    ptr::null_mut(),
                    static_lock_class!().as_ptr(),
                )
            });
            let disk = match disk {
                Ok(d) => d,
                Err(e) => {
                    // SAFETY: allocated above and used by nothing.
                    unsafe { bindings::blk_mq_free_tag_set(set) };
                    return Err(e);
                }
            };
            // SAFETY: `disk` was just allocated and is not visible yet.
            unsafe {
                (*disk).major = p.major as i32;
                (*disk).first_minor = p.first_minor as i32;
                (*disk).minors = p.minors as i32;
                (*disk).fops = &T::VTABLE.fops;
                (*disk).events = bindings::DISK_EVENT_MEDIA_CHANGE as u16;
                (*disk).event_flags = bindings::DISK_EVENT_FLAG_UEVENT as u16;
                if p.suppress_part_scan {
                    bindings::set_bit(
                        bindings::GD_SUPPRESS_PART_SCAN as c_ulong,
                        ptr::addr_of_mut!((*disk).state),
                    );
                }
            }
            // SAFETY: `disk` is the gendisk just allocated, ours alone;
            // `disk_name` is a byte array (`c_char` is `u8`).
            let disk_name = unsafe { &mut (*disk).disk_name };
            // A name that does not fit in `DISK_NAME_LEN` is cut at a
            // formatting piece (`loop<N>` always fits: at most 14 bytes).
            if let Some(mut w) = NullTerminatedFormatter::new(disk_name) {
                let _ = fmt::Write::write_fmt(&mut w, name);
            }
            let state = kernel::new_spinlock!(DiskState::Allocated, "Disk::state");
            let io_lock = kernel::new_mutex!((), "Disk::io_lock");
            // SAFETY: the remaining fields are valid for writes; `state` is
            // pinned in place.
            let Ok(()) = unsafe {
                ptr::addr_of_mut!((*slot).gendisk).write(disk);
                ptr::addr_of_mut!((*slot).io).write(UnsafeCell::new(io));
                ptr::addr_of_mut!((*slot).io_bound).write(Atomic::new(false));
                ptr::addr_of_mut!((*slot)._p).write(PhantomData);
                state.__init(ptr::addr_of_mut!((*slot).state))
            };
            // SAFETY: `io_lock` is valid for writes and pinned in place, as
            // `state` above.
            let Ok(()) = unsafe { io_lock.__init(ptr::addr_of_mut!((*slot).io_lock)) };
            // INVARIANT: tag set allocated, gendisk allocated on it with our
            // reference, state `Allocated`.
            Ok(())
        };
        // SAFETY: on success `init` initialized every field; on failure it
        // released what it had allocated.
        unsafe { pin_init::pin_init_from_closure(init) }
    }

    /// Adds the disk to the system with `owner` as its private data, making
    /// `/dev/<name>` and `/sys/block/<name>` appear.
    pub(crate) fn add(&self, owner: Arc<T>) -> Result {
        {
            let mut state = self.state.lock();
            if *state != DiskState::Allocated {
                return Err(EINVAL);
            }
            *state = DiskState::Adding;
        }
        let data = owner.into_foreign();
        // SAFETY: `Adding` keeps `gendisk` valid and unadded (only this call
        // leaves that state); the private data is set before anything can
        // call into the driver. No lock is held: adding may scan partitions,
        // which opens the disk and calls `DiskOps::open`.
        let ret = unsafe {
            (*self.gendisk).private_data = data;
            (*(*self.gendisk).queue).queuedata = data;
            bindings::device_add_disk(ptr::null_mut(), self.gendisk, ptr::null_mut())
        };
        if ret != 0 {
            // SAFETY: not added, so `free_disk` will never run: the Arc is
            // still ours. The gendisk is put on `remove` or drop.
            unsafe {
                (*self.gendisk).private_data = ptr::null_mut();
                (*(*self.gendisk).queue).queuedata = ptr::null_mut();
                drop(Arc::<T>::from_foreign(data));
            }
            *self.state.lock() = DiskState::Allocated;
            return Err(Error::from_errno(ret));
        }
        // INVARIANT: added, with the Arc in `private_data`.
        *self.state.lock() = DiskState::Added;
        Ok(())
    }

    /// Number of openers of the whole disk (`disk_openers`); 0 unless added.
    pub(crate) fn openers(&self) -> u32 {
        let state = self.state.lock();
        if *state != DiskState::Added {
            return 0;
        }
        // SAFETY: `Added`, so `gendisk` is valid; holding the lock keeps
        // `remove` from dropping our reference meanwhile.
        unsafe { GenDisk::from_raw(self.gendisk) }.openers()
    }

    /// Deletes the disk (`del_gendisk`) and drops this handle's reference.
    /// The driver state is released when the gendisk's last reference goes.
    pub(crate) fn remove(&self) {
        let old = {
            let mut state = self.state.lock();
            let old = *state;
            if old != DiskState::Adding {
                *state = DiskState::Gone;
            }
            old
        };
        // No lock is held from here on: deleting waits for `open_mutex`,
        // whose holders may be in `DiskOps` callbacks.
        match old {
            // SAFETY: was `Added`: a valid, added gendisk whose reference we
            // own, and nothing else reads it now that it is `Gone`.
            DiskState::Added => unsafe {
                bindings::del_gendisk(self.gendisk);
                bindings::put_disk(self.gendisk);
            },
            // SAFETY: was `Allocated`: likewise, never added.
            DiskState::Allocated => unsafe { bindings::put_disk(self.gendisk) },
            DiskState::Adding => kernel::pr_warn_once!("removing a disk while adding it\n"),
            DiskState::Gone => {}
        }
    }
}

#[pinned_drop]
impl<T: DiskOps> PinnedDrop for Disk<T> {
    fn drop(self: Pin<&mut Self>) {
        // An added disk holds an `Arc<T>`, so `T` (and with it this handle)
        // is only dropped after `remove` or when it was never added.
        self.remove();
        // SAFETY: by the type invariant the tag set is allocated; every
        // gendisk of it is released (`Gone`): `free_disk` runs after the
        // queue is released, or `put_disk` released an unadded disk above.
        unsafe { bindings::blk_mq_free_tag_set(self.tag_set.get()) };
    }
}

/// A live gendisk, borrowed for the duration of a callback or while the
/// caller otherwise knows it is alive.
///
/// # Invariants
///
/// `0` is a gendisk allocated by the block layer that stays allocated for
/// as long as the reference to this value lives: its `part0` (the whole
/// disk's block device, with its device and kobject), its `queue` and its
/// `open_mutex` are valid then.
#[repr(transparent)]
pub(crate) struct GenDisk(Opaque<bindings::gendisk>);

impl GenDisk {
    /// # Safety
    ///
    /// `ptr` is a valid gendisk for the lifetime `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::gendisk) -> &'a Self {
        // INVARIANT: valid for `'a`, the lifetime of the reference.
        // SAFETY: `GenDisk` is a transparent wrapper of `gendisk`.
        unsafe { &*ptr.cast() }
    }

    pub(super) fn raw(&self) -> *mut bindings::gendisk {
        self.0.get()
    }

    fn dev_kobj(&self) -> *mut bindings::kobject {
        // SAFETY: the disk's `part0` is valid (type invariant); `disk_to_dev()`.
        unsafe { ptr::addr_of_mut!((*(*self.raw()).part0).bd_device.kobj) }
    }

    /// `disk_openers()`: openers of the whole disk.
    pub(crate) fn openers(&self) -> u32 {
        // SAFETY: the disk's `part0` is valid (type invariant); `bd_openers` is an
        // `atomic_t`, read as `atomic_read` does.
        let n =
            unsafe { ptr::read_volatile(ptr::addr_of!((*(*self.raw()).part0).bd_openers.counter)) };
        n.max(0) as u32
    }

    /// `set_capacity_and_notify()`; sends a change uevent itself when it
    /// does not (the capacity did not change), as `loop_set_size()` does.
    pub(crate) fn set_capacity_and_notify(&self, sectors: u64) {
        // SAFETY: a valid gendisk (type invariant).
        if !unsafe { bindings::set_capacity_and_notify(self.raw(), sectors) } {
            self.uevent_change();
        }
    }

    /// Sends a `KOBJ_CHANGE` uevent for the disk.
    pub(crate) fn uevent_change(&self) {
        // SAFETY: the kobject of the disk's device (type invariant).
        unsafe { bindings::kobject_uevent(self.dev_kobj(), bindings::kobject_action_KOBJ_CHANGE) };
    }

    /// `dev_set_uevent_suppress()` on the disk's device.
    pub(crate) fn set_uevent_suppress(&self, suppress: bool) {
        // SAFETY: the kobject of the disk's device (type invariant); the C inline writes
        // the bit field the same way.
        unsafe { (*self.dev_kobj()).set_uevent_suppress(c_uint::from(suppress)) };
    }

    /// `disk_force_media_change()`.
    pub(crate) fn force_media_change(&self) {
        // SAFETY: a valid gendisk (type invariant).
        unsafe { bindings::disk_force_media_change(self.raw()) };
    }

    /// `set_disk_ro()`.
    pub(crate) fn set_read_only(&self, ro: bool) {
        // SAFETY: a valid gendisk (type invariant).
        unsafe { bindings::set_disk_ro(self.raw(), ro) };
    }

    /// Sets or clears `GD_SUPPRESS_PART_SCAN`.
    pub(crate) fn set_suppress_part_scan(&self, suppress: bool) {
        let bit = bindings::GD_SUPPRESS_PART_SCAN as c_ulong;
        // SAFETY: `state` of the disk (type invariant), changed with atomic
        // bit operations.
        unsafe {
            let state = ptr::addr_of_mut!((*self.raw()).state);
            if suppress {
                bindings::set_bit(bit, state);
            } else {
                bindings::clear_bit(bit, state);
            }
        }
    }

    /// `sync_blockdev()` and `invalidate_bdev()` of the whole disk, before
    /// its geometry changes.
    pub(crate) fn sync_and_invalidate(&self) {
        // SAFETY: the disk's `part0` (type invariant).
        unsafe {
            let part0 = (*self.raw()).part0;
            bindings::sync_blockdev(part0);
            bindings::invalidate_bdev(part0);
        }
    }

    /// `invalidate_disk()`: drops the page cache and zeroes the capacity.
    pub(crate) fn invalidate(&self) {
        // SAFETY: a valid gendisk (type invariant).
        unsafe { bindings::invalidate_disk(self.raw()) };
    }

    /// The disk's request queue.
    pub(crate) fn queue(&self) -> &Queue {
        // SAFETY: the disk's queue lives at least as long as the disk (type
        // invariant), so as long as the returned reference (`Queue`'s).
        unsafe { &*(*self.raw()).queue.cast::<Queue>() }
    }

    /// Creates the sysfs attribute group `group` on the disk's device.
    pub(crate) fn add_group(&self, group: &'static super::sysfs::Group) -> Result {
        // SAFETY: the kobject of the disk (type invariant); `group` is static.
        to_result(unsafe { bindings::sysfs_create_group(self.dev_kobj(), group.as_raw()) })
    }

    /// Removes the sysfs attribute group `group` (no-op if absent). Waits
    /// for running `show` callbacks of the group.
    pub(crate) fn remove_group(&self, group: &'static super::sysfs::Group) {
        // SAFETY: the kobject of the disk (type invariant); `group` is static.
        unsafe { bindings::sysfs_remove_group(self.dev_kobj(), group.as_raw()) };
    }
}

/// A disk in its `release` callback: `open_mutex` is held.
pub(crate) struct ReleasingDisk<'a>(&'a GenDisk);

impl core::ops::Deref for ReleasingDisk<'_> {
    type Target = GenDisk;
    fn deref(&self) -> &GenDisk {
        self.0
    }
}

impl ReleasingDisk<'_> {
    /// Rescans the partitions with `open_mutex` already held, dropping
    /// partitions added by `BLKPG` too (as `__loop_clr_fd` does).
    pub(crate) fn rescan_partitions(&self) -> Result {
        // SAFETY: the disk (`GenDisk`'s invariant), whose `open_mutex` the
        // release path holds.
        to_result(unsafe { bindings::bdev_disk_changed(self.0.raw(), false) })
    }
}

/// A block device (whole disk or partition) in an ioctl callback.
///
/// # Invariants
///
/// `0` is an open block device of a live gendisk (`bd_disk`) for as long
/// as the reference to this value lives; its `bd_dev` is constant.
#[repr(transparent)]
pub(crate) struct BlockDevice(Opaque<bindings::block_device>);

impl BlockDevice {
    fn raw(&self) -> *mut bindings::block_device {
        self.0.get()
    }

    /// Rescans the partitions of its disk (`bdev_disk_changed` under
    /// `open_mutex`).
    ///
    /// A method of the block device rather than of [`GenDisk`], so that it
    /// cannot be reached where `open_mutex` is held: the `open` and
    /// `release` callbacks get a [`GenDisk`] and a [`ReleasingDisk`], from
    /// which no `BlockDevice` can be had (`release` has
    /// [`ReleasingDisk::rescan_partitions`] instead); a `BlockDevice` is
    /// handed only to the ioctl callbacks, which run without it.
    pub(crate) fn rescan_partitions(&self) -> Result {
        let disk = self.disk().raw();
        // SAFETY: the device's disk (type invariant); its `open_mutex` is a
        // valid mutex that this context does not hold (see above).
        let rc = unsafe {
            let m = ptr::addr_of_mut!((*disk).open_mutex);
            bindings::mutex_lock(m);
            let rc = bindings::bdev_disk_changed(disk, false);
            bindings::mutex_unlock(m);
            rc
        };
        to_result(rc)
    }

    /// The disk this block device belongs to.
    pub(crate) fn disk(&self) -> &GenDisk {
        // SAFETY: an open block device pins its disk.
        unsafe { GenDisk::from_raw((*self.raw()).bd_disk) }
    }

    /// Its `dev_t`.
    pub(crate) fn devt(&self) -> u32 {
        // SAFETY: `bd_dev` is constant (type invariant).
        unsafe { (*self.raw()).bd_dev }
    }

    /// `bd_prepare_to_claim()` with `holder`: keeps others from claiming
    /// the device exclusively until the returned claim is dropped
    /// (`bd_abort_claiming()`).
    pub(crate) fn prepare_to_claim<'a>(
        &'a self,
        holder: &'static ClaimHolder,
    ) -> Result<Claim<'a>> {
        let h = ptr::from_ref(holder).cast_mut().cast::<c_void>();
        // SAFETY: an open block device (type invariant); `h` is a static
        // address.
        to_result(unsafe { bindings::bd_prepare_to_claim(self.raw(), h, ptr::null()) })?;
        Ok(Claim { bdev: self, holder })
    }
}

/// A holder identity for [`BlockDevice::prepare_to_claim`]: its address.
pub(crate) struct ClaimHolder(#[allow(dead_code)] u8);

impl ClaimHolder {
    /// A new holder identity (use it as a `static`).
    pub(crate) const fn new() -> Self {
        ClaimHolder(0)
    }
}

/// A pending exclusive claim, aborted on drop.
pub(crate) struct Claim<'a> {
    bdev: &'a BlockDevice,
    holder: &'static ClaimHolder,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        let h = ptr::from_ref(self.holder).cast_mut().cast::<c_void>();
        // SAFETY: the claim was prepared with this holder on this device.
        unsafe { bindings::bd_abort_claiming(self.bdev.raw(), h) };
    }
}

/// A request queue.
///
/// # Invariants
///
/// `0` is a request queue that stays allocated for as long as the
/// reference to this value lives (a disk's queue lives as long as the
/// disk; a request's as long as the request).
#[repr(transparent)]
pub(crate) struct Queue(Opaque<bindings::request_queue>);

impl Queue {
    fn raw(&self) -> *mut bindings::request_queue {
        self.0.get()
    }

    /// Freezes the queue: waits for requests in flight and holds new ones
    /// back until the returned guard is dropped.
    pub(crate) fn freeze(&self) -> FrozenQueue<'_> {
        // SAFETY: a valid queue (type invariant).
        let memflags = unsafe { helpers::rust_loop_freeze_queue(self.raw().cast()) };
        FrozenQueue {
            queue: self,
            memflags,
        }
    }

    /// Whether a request of the queue is in flight (started and not yet
    /// ended: `blk_mq_queue_inflight()`).
    pub(crate) fn inflight(&self) -> bool {
        // SAFETY: a valid queue (type invariant).
        unsafe { bindings::blk_mq_queue_inflight(self.raw()) }
    }

    /// The current logical block size.
    pub(crate) fn logical_block_size(&self) -> u32 {
        // SAFETY: a valid queue (type invariant); the limits are read racily as
        // `queue_logical_block_size()` does.
        unsafe { ptr::read_volatile(ptr::addr_of!((*self.raw()).limits.logical_block_size)) }
    }

    /// The current `max_discard_sectors` (`bdev_max_discard_sectors()`).
    pub(crate) fn max_discard_sectors(&self) -> u32 {
        // SAFETY: as in `logical_block_size`.
        unsafe { ptr::read_volatile(ptr::addr_of!((*self.raw()).limits.max_discard_sectors)) }
    }

    /// Atomically updates the queue limits (`queue_limits_start_update`,
    /// then `queue_limits_commit_update` of what `f` made of them).
    pub(crate) fn update_limits(&self, f: impl FnOnce(&mut Limits)) -> Result {
        let mut lim = self.start_update();
        f(&mut lim);
        self.commit_update(lim)
    }

    /// As [`Self::update_limits`] if `limits_lock` is free at once, else
    /// nothing (`None`): for the request path, which holds the queue, while
    /// a holder of `limits_lock` may be waiting to freeze it (taking the
    /// lock there would deadlock, as `loop.c`'s `loop_clear_limits()` can).
    pub(crate) fn try_update_limits(&self, f: impl FnOnce(&mut Limits)) -> Option<Result> {
        let mut lim = MaybeUninit::<bindings::queue_limits>::uninit();
        // SAFETY: a valid queue (type invariant); on success the helper holds `limits_lock`
        // and copied the current limits into `lim`.
        let locked = unsafe {
            helpers::rust_loop_queue_limits_try_start_update(
                self.raw().cast(),
                lim.as_mut_ptr().cast(),
            )
        };
        if !locked {
            return None;
        }
        // INVARIANT: `limits_lock` is held.
        let mut update = LimitsUpdate {
            queue: self,
            // SAFETY: initialized by the helper, which took the lock.
            lim: Limits(unsafe { lim.assume_init() }),
        };
        f(&mut update);
        Some(self.commit_update(update))
    }

    /// `queue_limits_start_update()`: locks `limits_lock`, which the
    /// returned update holds until committed.
    pub(super) fn start_update(&self) -> LimitsUpdate<'_> {
        let mut lim = MaybeUninit::<bindings::queue_limits>::uninit();
        // SAFETY: a valid queue (type invariant); the helper locks `limits_lock` and copies
        // the current limits into `lim`.
        unsafe {
            helpers::rust_loop_queue_limits_start_update(self.raw().cast(), lim.as_mut_ptr().cast())
        };
        // INVARIANT: `limits_lock` is held.
        LimitsUpdate {
            queue: self,
            // SAFETY: initialized by the helper.
            lim: Limits(unsafe { lim.assume_init() }),
        }
    }

    /// `queue_limits_commit_update()`: applies and unlocks `limits_lock`.
    pub(super) fn commit_update(&self, update: LimitsUpdate<'_>) -> Result {
        let mut update = core::mem::ManuallyDrop::new(update);
        // SAFETY: `limits_lock` is held by the update (type invariant);
        // committing releases it, so the update is not dropped.
        to_result(unsafe { bindings::queue_limits_commit_update(self.raw(), &mut update.lim.0) })
    }
}

/// A queue limits update in progress.
///
/// # Invariants
///
/// `queue`'s `limits_lock` is held; dropping the update cancels it.
pub(crate) struct LimitsUpdate<'a> {
    queue: &'a Queue,
    lim: Limits,
}

impl core::ops::Deref for LimitsUpdate<'_> {
    type Target = Limits;
    fn deref(&self) -> &Limits {
        &self.lim
    }
}

impl core::ops::DerefMut for LimitsUpdate<'_> {
    fn deref_mut(&mut self) -> &mut Limits {
        &mut self.lim
    }
}

impl Drop for LimitsUpdate<'_> {
    fn drop(&mut self) {
        // SAFETY: `limits_lock` is held (type invariant).
        unsafe { helpers::rust_loop_queue_limits_cancel_update(self.queue.raw().cast()) };
    }
}

/// A frozen queue; unfrozen on drop.
pub(crate) struct FrozenQueue<'a> {
    queue: &'a Queue,
    memflags: c_uint,
}

impl Drop for FrozenQueue<'_> {
    fn drop(&mut self) {
        // SAFETY: frozen by `Queue::freeze` with these `memflags`.
        unsafe { helpers::rust_loop_unfreeze_queue(self.queue.raw().cast(), self.memflags) };
    }
}

/// A copy of the queue limits being updated.
pub(crate) struct Limits(bindings::queue_limits);

impl Limits {
    /// Logical and physical block size, and `io_min`.
    pub(crate) fn set_block_size(&mut self, bsize: u32) {
        self.0.logical_block_size = bsize;
        self.0.physical_block_size = bsize;
        self.0.io_min = bsize;
    }

    /// `dma_alignment` (a mask).
    pub(crate) fn set_dma_alignment(&mut self, mask: u32) {
        self.0.dma_alignment = mask;
    }

    /// Sets or clears `BLK_FEAT_WRITE_CACHE` and `BLK_FEAT_ROTATIONAL`.
    pub(crate) fn set_features(&mut self, write_cache: bool, rotational: bool) {
        let wc = helpers::BLK_FEAT_WRITE_CACHE;
        let rot = bindings::BLK_FEAT_ROTATIONAL;
        self.0.features &= !(wc | rot);
        if write_cache {
            self.0.features |= wc;
        }
        if rotational {
            self.0.features |= rot;
        }
    }

    /// Discard and write-zeroes limits (0 disables them).
    pub(crate) fn set_discard(&mut self, max_sectors: u32, granularity: u32) {
        self.0.max_hw_discard_sectors = max_sectors;
        self.0.max_write_zeroes_sectors = max_sectors;
        self.0.discard_granularity = if max_sectors != 0 { granularity } else { 0 };
    }

    /// Disables write zeroes.
    pub(crate) fn clear_write_zeroes(&mut self) {
        self.0.max_write_zeroes_sectors = 0;
    }

    /// Disables discard.
    pub(crate) fn clear_discard(&mut self) {
        self.0.max_hw_discard_sectors = 0;
        self.0.discard_granularity = 0;
    }
}

/// The callbacks of a driver's disks, declared once as a `static` by the
/// driver ([`DiskOps::VTABLE`]): unlike a constant's, a static's address
/// is unique, so comparing a gendisk's `fops` with it identifies the
/// driver's disks, as `loop.c` compares with `&lo_fops`.
pub(crate) struct DiskVtable<T> {
    fops: bindings::block_device_operations,
    mq_ops: bindings::blk_mq_ops,
    _p: PhantomData<T>,
}

// SAFETY: two read-only tables of function pointers and the module's
// address, used by any thread.
unsafe impl<T> Sync for DiskVtable<T> {}

impl<T: DiskOps> DiskVtable<T> {
    /// The callbacks for disks of `T`.
    pub(crate) const fn new() -> Self {
        DiskVtable {
            fops: Vtable::<T>::FOPS,
            mq_ops: Vtable::<T>::MQ_OPS,
            _p: PhantomData,
        }
    }
}

struct Vtable<T>(PhantomData<T>);

impl<T: DiskOps> Vtable<T> {
    const FOPS: bindings::block_device_operations = bindings::block_device_operations {
        owner: kernel::module::this_module::<crate::LocalModule>().as_ptr(),
        open: Some(Self::open),
        release: Some(Self::release),
        ioctl: Some(Self::ioctl),
        compat_ioctl: Some(Self::compat_ioctl),
        free_disk: Some(Self::free_disk),
        ..pin_init::zeroed()
    };

    const MQ_OPS: bindings::blk_mq_ops = bindings::blk_mq_ops {
        queue_rq: Some(request::queue_rq_callback::<T>),
        complete: Some(request::complete_callback::<T>),
        init_request: Some(request::init_request_callback::<T>),
        exit_request: Some(request::exit_request_callback::<T>),
        ..pin_init::zeroed()
    };

    /// # Safety
    ///
    /// `disk` is an added disk of a [`Disk<T>`].
    unsafe fn driver<'a>(disk: *mut bindings::gendisk) -> ArcBorrow<'a, T> {
        // SAFETY: `private_data` holds an `Arc<T>` until `free_disk`, which
        // runs after every other callback of the disk.
        unsafe { Arc::<T>::borrow((*disk).private_data) }
    }

    /// `fops->open`.
    ///
    /// # Safety
    ///
    /// Called by the block layer for an added disk of `T`.
    unsafe extern "C" fn open(disk: *mut bindings::gendisk, mode: bindings::blk_mode_t) -> c_int {
        // SAFETY: the block layer calls `open` on a live, added disk.
        let (this, d) = unsafe { (Self::driver(disk), GenDisk::from_raw(disk)) };
        match this.open(d, OpenMode(mode)) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// `fops->release`.
    ///
    /// # Safety
    ///
    /// Called by the block layer for an added disk of `T`, with its
    /// `open_mutex` held.
    unsafe extern "C" fn release(disk: *mut bindings::gendisk) {
        // SAFETY: the block layer calls `release` on a live, added disk,
        // with `open_mutex` held.
        let (this, d) = unsafe { (Self::driver(disk), GenDisk::from_raw(disk)) };
        this.release(&ReleasingDisk(d));
    }

    /// `fops->ioctl`.
    ///
    /// # Safety
    ///
    /// Called by the block layer for an open block device of an added disk
    /// of `T`.
    unsafe extern "C" fn ioctl(
        bdev: *mut bindings::block_device,
        mode: bindings::blk_mode_t,
        cmd: c_uint,
        arg: c_ulong,
    ) -> c_int {
        // SAFETY: the block layer calls `ioctl` on an open block device of
        // an added disk of ours.
        let (this, b) = unsafe { (Self::driver((*bdev).bd_disk), &*bdev.cast::<BlockDevice>()) };
        match this.ioctl(b, OpenMode(mode), cmd, arg) {
            Ok(v) => v,
            Err(e) => e.to_errno(),
        }
    }

    /// `fops->compat_ioctl`.
    ///
    /// # Safety
    ///
    /// As for `ioctl`.
    unsafe extern "C" fn compat_ioctl(
        bdev: *mut bindings::block_device,
        mode: bindings::blk_mode_t,
        cmd: c_uint,
        arg: c_ulong,
    ) -> c_int {
        // SAFETY: as in `ioctl`.
        let (this, b) = unsafe { (Self::driver((*bdev).bd_disk), &*bdev.cast::<BlockDevice>()) };
        match this.compat_ioctl(b, OpenMode(mode), cmd, arg) {
            Ok(v) => v,
            Err(e) => e.to_errno(),
        }
    }

    /// `fops->free_disk`.
    ///
    /// # Safety
    ///
    /// Called by the block layer once, when the last reference of an added
    /// disk of `T` is gone.
    unsafe extern "C" fn free_disk(disk: *mut bindings::gendisk) {
        // SAFETY: the last reference of an added disk of ours is gone: the
        // `Arc<T>` in `private_data` is released exactly here.
        drop(unsafe { Arc::<T>::from_foreign((*disk).private_data) });
    }
}

/// The driver state of `disk` if it is an added disk of `T`'s.
///
/// # Safety
///
/// `disk` is a valid gendisk for `'a`.
pub(super) unsafe fn driver_of<'a, T: DiskOps>(
    disk: *mut bindings::gendisk,
) -> Option<ArcBorrow<'a, T>> {
    // SAFETY: valid by the caller's guarantee.
    if unsafe { (*disk).fops } != ptr::from_ref(&T::VTABLE.fops) {
        return None;
    }
    // SAFETY: our fops are set on our disks only, and a disk reachable
    // through a block device file is added; it is alive for `'a`.
    Some(unsafe { Vtable::<T>::driver(disk) })
}
