// SPDX-License-Identifier: GPL-2.0

//! Declarations of the C wrappers in `rust_loop_helpers.c` (one-line calls
//! of static inline kernel functions), and the kernel macro values that
//! bindgen cannot see; `rust_loop_helpers.c` checks each value against the
//! kernel's definition at build time (`include/rust_loop_helpers.h`), as
//! it does the sizes and field offsets of the loop UAPI structures.

use kernel::{
    bindings,
    ffi::{c_int, c_uint, c_void},
};

/// `BLK_OPEN_WRITE`.
pub(crate) const BLK_OPEN_WRITE: u32 = 1 << 1;
/// `BLK_OPEN_EXCL`.
pub(crate) const BLK_OPEN_EXCL: u32 = 1 << 2;
/// `FMODE_WRITE`.
pub(crate) const FMODE_WRITE: u32 = 1 << 1;
/// `FMODE_CAN_ODIRECT`.
pub(crate) const FMODE_CAN_ODIRECT: u32 = 1 << 22;
/// `XA_MARK_1`.
pub(crate) const XA_MARK_1: u32 = 1;
/// `__GFP_IO`.
pub(crate) const GFP_IO: u32 = 1 << 6;
/// `__GFP_FS`.
pub(crate) const GFP_FS: u32 = 1 << 7;
/// `FALLOC_FL_KEEP_SIZE`.
pub(crate) const FALLOC_FL_KEEP_SIZE: i32 = 0x01;
/// `FALLOC_FL_PUNCH_HOLE`.
pub(crate) const FALLOC_FL_PUNCH_HOLE: i32 = 0x02;
/// `FALLOC_FL_ZERO_RANGE`.
pub(crate) const FALLOC_FL_ZERO_RANGE: i32 = 0x10;
/// `REQ_NOUNMAP`.
pub(crate) const REQ_NOUNMAP: u32 = 1 << 28;
/// `BLK_FEAT_WRITE_CACHE`.
pub(crate) const BLK_FEAT_WRITE_CACHE: u32 = 1 << 0;
/// `BLK_STS_NOTSUPP`.
pub(crate) const BLK_STS_NOTSUPP: u8 = 1;
/// `BLK_STS_IOERR`.
pub(crate) const BLK_STS_IOERR: u8 = 10;

/// The layouts that `sys/uapi.rs` (the loop UAPI) and `sys/file.rs`
/// (`struct kstatfs`) spell out: checked against the kernel's structures
/// by `rust_loop_helpers.c`, and against the Rust structures by their
/// layout assertions, their only readers (`const _`
/// items do not count as uses for the `dead_code` lint).
#[allow(dead_code)]
pub(crate) mod layout {
    /// `sizeof(struct kstatfs)`.
    pub(crate) const KSTATFS_SIZE: usize = 120;
    /// `offsetof(struct kstatfs, f_bsize)`.
    pub(crate) const KSTATFS_BSIZE_OFFSET: usize = 8;
    /// `sizeof(struct loop_info)`.
    pub(crate) const LOOP_INFO_SIZE: usize = 168;
    /// `offsetof(struct loop_info, lo_number)`.
    pub(crate) const LOOP_INFO_OFF_LO_NUMBER: usize = 0;
    /// `offsetof(struct loop_info, lo_device)`.
    pub(crate) const LOOP_INFO_OFF_LO_DEVICE: usize = 8;
    /// `offsetof(struct loop_info, lo_inode)`.
    pub(crate) const LOOP_INFO_OFF_LO_INODE: usize = 16;
    /// `offsetof(struct loop_info, lo_rdevice)`.
    pub(crate) const LOOP_INFO_OFF_LO_RDEVICE: usize = 24;
    /// `offsetof(struct loop_info, lo_offset)`.
    pub(crate) const LOOP_INFO_OFF_LO_OFFSET: usize = 32;
    /// `offsetof(struct loop_info, lo_encrypt_type)`.
    pub(crate) const LOOP_INFO_OFF_LO_ENCRYPT_TYPE: usize = 36;
    /// `offsetof(struct loop_info, lo_encrypt_key_size)`.
    pub(crate) const LOOP_INFO_OFF_LO_ENCRYPT_KEY_SIZE: usize = 40;
    /// `offsetof(struct loop_info, lo_flags)`.
    pub(crate) const LOOP_INFO_OFF_LO_FLAGS: usize = 44;
    /// `offsetof(struct loop_info, lo_name)`.
    pub(crate) const LOOP_INFO_OFF_LO_NAME: usize = 48;
    /// `offsetof(struct loop_info, lo_encrypt_key)`.
    pub(crate) const LOOP_INFO_OFF_LO_ENCRYPT_KEY: usize = 112;
    /// `offsetof(struct loop_info, lo_init)`.
    pub(crate) const LOOP_INFO_OFF_LO_INIT: usize = 144;
    /// `offsetof(struct loop_info, reserved)`.
    pub(crate) const LOOP_INFO_OFF_RESERVED: usize = 160;
    /// `sizeof(struct loop_info64)`.
    pub(crate) const LOOP_INFO64_SIZE: usize = 232;
    /// `offsetof(struct loop_info64, lo_device)`.
    pub(crate) const LOOP_INFO64_OFF_LO_DEVICE: usize = 0;
    /// `offsetof(struct loop_info64, lo_inode)`.
    pub(crate) const LOOP_INFO64_OFF_LO_INODE: usize = 8;
    /// `offsetof(struct loop_info64, lo_rdevice)`.
    pub(crate) const LOOP_INFO64_OFF_LO_RDEVICE: usize = 16;
    /// `offsetof(struct loop_info64, lo_offset)`.
    pub(crate) const LOOP_INFO64_OFF_LO_OFFSET: usize = 24;
    /// `offsetof(struct loop_info64, lo_sizelimit)`.
    pub(crate) const LOOP_INFO64_OFF_LO_SIZELIMIT: usize = 32;
    /// `offsetof(struct loop_info64, lo_number)`.
    pub(crate) const LOOP_INFO64_OFF_LO_NUMBER: usize = 40;
    /// `offsetof(struct loop_info64, lo_encrypt_type)`.
    pub(crate) const LOOP_INFO64_OFF_LO_ENCRYPT_TYPE: usize = 44;
    /// `offsetof(struct loop_info64, lo_encrypt_key_size)`.
    pub(crate) const LOOP_INFO64_OFF_LO_ENCRYPT_KEY_SIZE: usize = 48;
    /// `offsetof(struct loop_info64, lo_flags)`.
    pub(crate) const LOOP_INFO64_OFF_LO_FLAGS: usize = 52;
    /// `offsetof(struct loop_info64, lo_file_name)`.
    pub(crate) const LOOP_INFO64_OFF_LO_FILE_NAME: usize = 56;
    /// `offsetof(struct loop_info64, lo_crypt_name)`.
    pub(crate) const LOOP_INFO64_OFF_LO_CRYPT_NAME: usize = 120;
    /// `offsetof(struct loop_info64, lo_encrypt_key)`.
    pub(crate) const LOOP_INFO64_OFF_LO_ENCRYPT_KEY: usize = 184;
    /// `offsetof(struct loop_info64, lo_init)`.
    pub(crate) const LOOP_INFO64_OFF_LO_INIT: usize = 216;
    /// `sizeof(struct loop_config)`.
    pub(crate) const LOOP_CONFIG_SIZE: usize = 304;
    /// `offsetof(struct loop_config, fd)`.
    pub(crate) const LOOP_CONFIG_OFF_FD: usize = 0;
    /// `offsetof(struct loop_config, block_size)`.
    pub(crate) const LOOP_CONFIG_OFF_BLOCK_SIZE: usize = 4;
    /// `offsetof(struct loop_config, info)`.
    pub(crate) const LOOP_CONFIG_OFF_INFO: usize = 8;
    /// `offsetof(struct loop_config, __reserved)`.
    pub(crate) const LOOP_CONFIG_OFF_RESERVED: usize = 240;
    /// `sizeof(struct compat_loop_info)`.
    pub(crate) const COMPAT_LOOP_INFO_SIZE: usize = 140;
    /// `offsetof(struct compat_loop_info, lo_number)`.
    pub(crate) const COMPAT_LOOP_INFO_OFF_LO_NUMBER: usize = 0;
    /// `offsetof(struct compat_loop_info, lo_device)`.
    pub(crate) const COMPAT_LOOP_INFO_OFF_LO_DEVICE: usize = 4;
    /// `offsetof(struct compat_loop_info, lo_inode)`.
    pub(crate) const COMPAT_LOOP_INFO_OFF_LO_INODE: usize = 8;
    /// `offsetof(struct compat_loop_info, lo_rdevice)`.
    pub(crate) const COMPAT_LOOP_INFO_OFF_LO_RDEVICE: usize = 12;
    /// `offsetof(struct compat_loop_info, lo_offset)`.
    pub(crate) const COMPAT_LOOP_INFO_OFF_LO_OFFSET: usize = 16;
    /// `offsetof(struct compat_loop_info, lo_encrypt_type)`.
    pub(crate) const COMPAT_LOOP_INFO_OFF_LO_ENCRYPT_TYPE: usize = 20;
    /// `offsetof(struct compat_loop_info, lo_encrypt_key_size)`.
    pub(crate) const COMPAT_LOOP_INFO_OFF_LO_ENCRYPT_KEY_SIZE: usize = 24;
    /// `offsetof(struct compat_loop_info, lo_flags)`.
    pub(crate) const COMPAT_LOOP_INFO_OFF_LO_FLAGS: usize = 28;
    /// `offsetof(struct compat_loop_info, lo_name)`.
    pub(crate) const COMPAT_LOOP_INFO_OFF_LO_NAME: usize = 32;
    /// `offsetof(struct compat_loop_info, lo_encrypt_key)`.
    pub(crate) const COMPAT_LOOP_INFO_OFF_LO_ENCRYPT_KEY: usize = 96;
    /// `offsetof(struct compat_loop_info, lo_init)`.
    pub(crate) const COMPAT_LOOP_INFO_OFF_LO_INIT: usize = 128;
    /// `offsetof(struct compat_loop_info, reserved)`.
    pub(crate) const COMPAT_LOOP_INFO_OFF_RESERVED: usize = 136;
}

extern "C" {
    /// `*lim = queue_limits_start_update(q)`: locks `q->limits_lock`.
    pub(crate) fn rust_loop_queue_limits_start_update(q: *mut c_void, lim: *mut c_void);
    /// `*lim = q->limits` if `mutex_trylock(&q->limits_lock)` succeeds.
    pub(crate) fn rust_loop_queue_limits_try_start_update(q: *mut c_void, lim: *mut c_void)
        -> bool;
    /// `queue_limits_cancel_update(q)`: unlocks `q->limits_lock`.
    pub(crate) fn rust_loop_queue_limits_cancel_update(q: *mut c_void);
    /// `blk_mq_freeze_queue(q)`.
    pub(crate) fn rust_loop_freeze_queue(q: *mut c_void) -> c_uint;
    /// `blk_mq_unfreeze_queue(q, memflags)`.
    pub(crate) fn rust_loop_unfreeze_queue(q: *mut c_void, memflags: c_uint);
    /// `kiocb_start_write(iocb)`.
    pub(crate) fn rust_loop_kiocb_start_write(iocb: *mut c_void);
    /// `kiocb_end_write(iocb)`.
    pub(crate) fn rust_loop_kiocb_end_write(iocb: *mut c_void);
    /// `memalloc_noio_save()`.
    pub(crate) fn rust_loop_memalloc_noio_save() -> c_uint;
    /// `memalloc_noio_restore(flags)`.
    pub(crate) fn rust_loop_memalloc_noio_restore(flags: c_uint);
    /// `bio_blkcg_css(rq->bio)`, or NULL without a bio or blkcg, or for
    /// the root blkcg (the worker's own).
    pub(crate) fn rust_loop_rq_blkcg_css(rq: *mut c_void) -> *mut c_void;
    /// A reference on the memory cgroup css of `blkcg_css`'s cgroup
    /// (`cgroup_get_e_css()`), or NULL.
    pub(crate) fn rust_loop_get_memcg_css(blkcg_css: *mut c_void) -> *mut c_void;
    /// `css_put(css)`.
    pub(crate) fn rust_loop_css_put(css: *mut c_void);
    /// `kthread_associate_blkcg(css)`: takes its own reference.
    pub(crate) fn rust_loop_kthread_associate_blkcg(css: *mut c_void);
    /// `set_active_memcg(mem_cgroup_from_css(css))`: the previous memcg.
    pub(crate) fn rust_loop_set_active_memcg_css(css: *mut c_void) -> *mut c_void;
    /// `set_active_memcg(memcg)`.
    pub(crate) fn rust_loop_set_active_memcg(memcg: *mut c_void);
    /// `mutex_lock_killable(lock)`: 0, or `-EINTR` on a fatal signal.
    pub(crate) fn rust_loop_mutex_lock_killable(lock: *mut c_void) -> c_int;
    /// The CPU to queue per-CPU work from this one on: `WORK_CPU_UNBOUND`
    /// (this CPU) for a housekeeping CPU, else a housekeeping CPU.
    pub(crate) fn rust_loop_housekeeping_work_cpu() -> c_int;
    /// `queue_work_on()` of `work` on `wq` on the next online housekeeping
    /// CPU after this one (where there is none, as
    /// [`rust_loop_housekeeping_work_cpu`]); false if it was pending.
    pub(crate) fn rust_loop_queue_work_elsewhere(
        wq: *mut bindings::workqueue_struct,
        work: *mut bindings::work_struct,
    ) -> bool;
    /// `task_is_running(task)`.
    pub(crate) fn rust_loop_task_is_running(task: *mut c_void) -> bool;
    /// Saves `current->flags`, sets `PF_LOCAL_THROTTLE | PF_MEMALLOC_NOIO`.
    pub(crate) fn rust_loop_worker_flags_save() -> c_uint;
    /// `current->flags = flags`.
    pub(crate) fn rust_loop_worker_flags_restore(flags: c_uint);
    /// `cond_resched()`.
    pub(crate) fn rust_loop_cond_resched();
    /// `blk_mq_complete_request_direct(rq, rq->q->mq_ops->complete)`.
    pub(crate) fn rust_loop_complete_request_direct(rq: *mut c_void);
}
