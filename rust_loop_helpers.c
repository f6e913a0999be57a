// SPDX-License-Identifier: GPL-2.0
/*
 * rust_loop: one-line wrappers of static inline kernel functions for the
 * Rust side (see include/rust_loop_helpers.h), in the manner of the
 * kernel's rust/helpers/, and build-time checks of the macro values and
 * the loop UAPI layouts that the Rust side mirrors.
 */
#include <linux/blk-cgroup.h>
#include <linux/blk-mq.h>
#include <linux/blkdev.h>
#include <linux/cgroup.h>
#include <linux/kthread.h>
#include <linux/memcontrol.h>
#include <linux/build_bug.h>
#include <linux/compat.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <linux/sched.h>
#include <linux/sched/isolation.h>
#include <linux/sched/mm.h>
#include <linux/statfs.h>
#include <linux/workqueue.h>
#include <uapi/linux/loop.h>

#include "rust_loop_helpers.h"

static_assert(RUST_LOOP_BLK_OPEN_WRITE == (__force unsigned int)BLK_OPEN_WRITE);
static_assert(RUST_LOOP_BLK_OPEN_EXCL == (__force unsigned int)BLK_OPEN_EXCL);
static_assert(RUST_LOOP_FMODE_WRITE == (__force unsigned int)FMODE_WRITE);
static_assert(RUST_LOOP_FMODE_CAN_ODIRECT == (__force unsigned int)FMODE_CAN_ODIRECT);
static_assert(RUST_LOOP_XA_MARK_1 == (__force unsigned int)XA_MARK_1);
static_assert(RUST_LOOP_GFP_IO == (__force unsigned int)__GFP_IO);
static_assert(RUST_LOOP_GFP_FS == (__force unsigned int)__GFP_FS);
static_assert(RUST_LOOP_FALLOC_FL_KEEP_SIZE == FALLOC_FL_KEEP_SIZE);
static_assert(RUST_LOOP_FALLOC_FL_PUNCH_HOLE == FALLOC_FL_PUNCH_HOLE);
static_assert(RUST_LOOP_FALLOC_FL_ZERO_RANGE == FALLOC_FL_ZERO_RANGE);
static_assert(RUST_LOOP_KSTATFS_SIZE == sizeof(struct kstatfs));
static_assert(RUST_LOOP_KSTATFS_BSIZE_OFFSET == offsetof(struct kstatfs, f_bsize));
static_assert(RUST_LOOP_REQ_NOUNMAP == (__force unsigned int)REQ_NOUNMAP);
static_assert(RUST_LOOP_BLK_FEAT_WRITE_CACHE == (__force unsigned int)BLK_FEAT_WRITE_CACHE);
static_assert(RUST_LOOP_BLK_STS_NOTSUPP == (__force int)BLK_STS_NOTSUPP);
static_assert(RUST_LOOP_BLK_STS_IOERR == (__force int)BLK_STS_IOERR);

/* The loop UAPI numbers that sys/uapi.rs spells out. */
static_assert(RUST_LOOP_LOOP_SET_FD == LOOP_SET_FD);
static_assert(RUST_LOOP_LOOP_CLR_FD == LOOP_CLR_FD);
static_assert(RUST_LOOP_LOOP_SET_STATUS == LOOP_SET_STATUS);
static_assert(RUST_LOOP_LOOP_GET_STATUS == LOOP_GET_STATUS);
static_assert(RUST_LOOP_LOOP_SET_STATUS64 == LOOP_SET_STATUS64);
static_assert(RUST_LOOP_LOOP_GET_STATUS64 == LOOP_GET_STATUS64);
static_assert(RUST_LOOP_LOOP_CHANGE_FD == LOOP_CHANGE_FD);
static_assert(RUST_LOOP_LOOP_SET_CAPACITY == LOOP_SET_CAPACITY);
static_assert(RUST_LOOP_LOOP_SET_DIRECT_IO == LOOP_SET_DIRECT_IO);
static_assert(RUST_LOOP_LOOP_SET_BLOCK_SIZE == LOOP_SET_BLOCK_SIZE);
static_assert(RUST_LOOP_LOOP_CONFIGURE == LOOP_CONFIGURE);
static_assert(RUST_LOOP_LOOP_CTL_ADD == LOOP_CTL_ADD);
static_assert(RUST_LOOP_LOOP_CTL_REMOVE == LOOP_CTL_REMOVE);
static_assert(RUST_LOOP_LOOP_CTL_GET_FREE == LOOP_CTL_GET_FREE);
static_assert(RUST_LOOP_LO_FLAGS_READ_ONLY == LO_FLAGS_READ_ONLY);
static_assert(RUST_LOOP_LO_FLAGS_AUTOCLEAR == LO_FLAGS_AUTOCLEAR);
static_assert(RUST_LOOP_LO_FLAGS_PARTSCAN == LO_FLAGS_PARTSCAN);
static_assert(RUST_LOOP_LO_FLAGS_DIRECT_IO == LO_FLAGS_DIRECT_IO);
static_assert(RUST_LOOP_LO_NAME_SIZE == LO_NAME_SIZE);
static_assert(RUST_LOOP_LO_KEY_SIZE == LO_KEY_SIZE);
static_assert(RUST_LOOP_LO_CRYPT_NONE == LO_CRYPT_NONE);
static_assert(RUST_LOOP_LO_CRYPT_XOR == LO_CRYPT_XOR);
static_assert(RUST_LOOP_LO_CRYPT_CRYPTOAPI == LO_CRYPT_CRYPTOAPI);

/* The loop UAPI layouts that sys/uapi.rs assumes. */
#define CHECK_SIZE(S, type) static_assert(RUST_LOOP_##S##_SIZE == sizeof(struct type))
#define CHECK_OFF(S, type, F, f) static_assert(RUST_LOOP_##S##_OFF_##F == offsetof(struct type, f))

CHECK_SIZE(LOOP_INFO, loop_info);
CHECK_OFF(LOOP_INFO, loop_info, LO_NUMBER, lo_number);
CHECK_OFF(LOOP_INFO, loop_info, LO_DEVICE, lo_device);
CHECK_OFF(LOOP_INFO, loop_info, LO_INODE, lo_inode);
CHECK_OFF(LOOP_INFO, loop_info, LO_RDEVICE, lo_rdevice);
CHECK_OFF(LOOP_INFO, loop_info, LO_OFFSET, lo_offset);
CHECK_OFF(LOOP_INFO, loop_info, LO_ENCRYPT_TYPE, lo_encrypt_type);
CHECK_OFF(LOOP_INFO, loop_info, LO_ENCRYPT_KEY_SIZE, lo_encrypt_key_size);
CHECK_OFF(LOOP_INFO, loop_info, LO_FLAGS, lo_flags);
CHECK_OFF(LOOP_INFO, loop_info, LO_NAME, lo_name);
CHECK_OFF(LOOP_INFO, loop_info, LO_ENCRYPT_KEY, lo_encrypt_key);
CHECK_OFF(LOOP_INFO, loop_info, LO_INIT, lo_init);
CHECK_OFF(LOOP_INFO, loop_info, RESERVED, reserved);
CHECK_SIZE(LOOP_INFO64, loop_info64);
CHECK_OFF(LOOP_INFO64, loop_info64, LO_DEVICE, lo_device);
CHECK_OFF(LOOP_INFO64, loop_info64, LO_INODE, lo_inode);
CHECK_OFF(LOOP_INFO64, loop_info64, LO_RDEVICE, lo_rdevice);
CHECK_OFF(LOOP_INFO64, loop_info64, LO_OFFSET, lo_offset);
CHECK_OFF(LOOP_INFO64, loop_info64, LO_SIZELIMIT, lo_sizelimit);
CHECK_OFF(LOOP_INFO64, loop_info64, LO_NUMBER, lo_number);
CHECK_OFF(LOOP_INFO64, loop_info64, LO_ENCRYPT_TYPE, lo_encrypt_type);
CHECK_OFF(LOOP_INFO64, loop_info64, LO_ENCRYPT_KEY_SIZE, lo_encrypt_key_size);
CHECK_OFF(LOOP_INFO64, loop_info64, LO_FLAGS, lo_flags);
CHECK_OFF(LOOP_INFO64, loop_info64, LO_FILE_NAME, lo_file_name);
CHECK_OFF(LOOP_INFO64, loop_info64, LO_CRYPT_NAME, lo_crypt_name);
CHECK_OFF(LOOP_INFO64, loop_info64, LO_ENCRYPT_KEY, lo_encrypt_key);
CHECK_OFF(LOOP_INFO64, loop_info64, LO_INIT, lo_init);
CHECK_SIZE(LOOP_CONFIG, loop_config);
CHECK_OFF(LOOP_CONFIG, loop_config, FD, fd);
CHECK_OFF(LOOP_CONFIG, loop_config, BLOCK_SIZE, block_size);
CHECK_OFF(LOOP_CONFIG, loop_config, INFO, info);
CHECK_OFF(LOOP_CONFIG, loop_config, RESERVED, __reserved);

#ifdef CONFIG_COMPAT
/* loop.c's struct compat_loop_info (32-bit user space's struct loop_info). */
struct rust_loop_compat_loop_info {
	compat_int_t	lo_number;
	compat_dev_t	lo_device;
	compat_ulong_t	lo_inode;
	compat_dev_t	lo_rdevice;
	compat_int_t	lo_offset;
	compat_int_t	lo_encrypt_type;
	compat_int_t	lo_encrypt_key_size;
	compat_int_t	lo_flags;
	char		lo_name[LO_NAME_SIZE];
	unsigned char	lo_encrypt_key[LO_KEY_SIZE];
	compat_ulong_t	lo_init[2];
	char		reserved[4];
};

CHECK_SIZE(COMPAT_LOOP_INFO, rust_loop_compat_loop_info);
CHECK_OFF(COMPAT_LOOP_INFO, rust_loop_compat_loop_info, LO_NUMBER, lo_number);
CHECK_OFF(COMPAT_LOOP_INFO, rust_loop_compat_loop_info, LO_DEVICE, lo_device);
CHECK_OFF(COMPAT_LOOP_INFO, rust_loop_compat_loop_info, LO_INODE, lo_inode);
CHECK_OFF(COMPAT_LOOP_INFO, rust_loop_compat_loop_info, LO_RDEVICE, lo_rdevice);
CHECK_OFF(COMPAT_LOOP_INFO, rust_loop_compat_loop_info, LO_OFFSET, lo_offset);
CHECK_OFF(COMPAT_LOOP_INFO, rust_loop_compat_loop_info, LO_ENCRYPT_TYPE, lo_encrypt_type);
CHECK_OFF(COMPAT_LOOP_INFO, rust_loop_compat_loop_info, LO_ENCRYPT_KEY_SIZE, lo_encrypt_key_size);
CHECK_OFF(COMPAT_LOOP_INFO, rust_loop_compat_loop_info, LO_FLAGS, lo_flags);
CHECK_OFF(COMPAT_LOOP_INFO, rust_loop_compat_loop_info, LO_NAME, lo_name);
CHECK_OFF(COMPAT_LOOP_INFO, rust_loop_compat_loop_info, LO_ENCRYPT_KEY, lo_encrypt_key);
CHECK_OFF(COMPAT_LOOP_INFO, rust_loop_compat_loop_info, LO_INIT, lo_init);
CHECK_OFF(COMPAT_LOOP_INFO, rust_loop_compat_loop_info, RESERVED, reserved);
#endif

#undef CHECK_OFF
#undef CHECK_SIZE

void rust_loop_queue_limits_start_update(struct request_queue *q,
					 struct queue_limits *lim)
{
	*lim = queue_limits_start_update(q);
}

/* queue_limits_start_update(), if limits_lock is free at once. */
bool rust_loop_queue_limits_try_start_update(struct request_queue *q,
					     struct queue_limits *lim)
{
	if (!mutex_trylock(&q->limits_lock))
		return false;
	*lim = q->limits;
	return true;
}

void rust_loop_queue_limits_cancel_update(struct request_queue *q)
{
	queue_limits_cancel_update(q);
}

unsigned int rust_loop_freeze_queue(struct request_queue *q)
{
	return blk_mq_freeze_queue(q);
}

void rust_loop_unfreeze_queue(struct request_queue *q, unsigned int memflags)
{
	blk_mq_unfreeze_queue(q, memflags);
}

void rust_loop_kiocb_start_write(struct kiocb *iocb)
{
	kiocb_start_write(iocb);
}

void rust_loop_kiocb_end_write(struct kiocb *iocb)
{
	kiocb_end_write(iocb);
}

unsigned int rust_loop_memalloc_noio_save(void)
{
	return memalloc_noio_save();
}

void rust_loop_memalloc_noio_restore(unsigned int flags)
{
	memalloc_noio_restore(flags);
}

int rust_loop_mutex_lock_killable(struct mutex *lock)
{
	return mutex_lock_killable(lock);
}

/*
 * Whether work may run on @cpu: a housekeeping CPU. An unbound workqueue's
 * wq_unbound_cpumask leaves out the CPUs isolated by isolcpus= or an
 * isolated cpuset partition (HK_TYPE_DOMAIN); nohz_full= CPUs
 * (HK_TYPE_WQ) are kept free of kernel work too.
 */
static bool housekeeping_work(int cpu)
{
	return housekeeping_cpu(cpu, HK_TYPE_DOMAIN) &&
	       housekeeping_cpu(cpu, HK_TYPE_WQ);
}

/* Where work queued from @cpu on a per-CPU workqueue goes: see below. */
static int housekeeping_work_cpu(int cpu)
{
	if (!housekeeping_cpu(cpu, HK_TYPE_DOMAIN))
		return housekeeping_any_cpu(HK_TYPE_DOMAIN);
	if (!housekeeping_cpu(cpu, HK_TYPE_WQ))
		return housekeeping_any_cpu(HK_TYPE_WQ);
	return WORK_CPU_UNBOUND;
}

/*
 * The CPU for queue_work_on() of a work item queued from this CPU on a
 * per-CPU workqueue: WORK_CPU_UNBOUND (this CPU) if it is a housekeeping
 * CPU, else the nearest housekeeping one.
 */
int rust_loop_housekeeping_work_cpu(void)
{
	int ret = housekeeping_work_cpu(get_cpu());

	put_cpu();
	return ret;
}

/*
 * queue_work_on() of a per-CPU work item on another CPU than this one: the
 * next online housekeeping CPU after it, or, where there is none, where
 * rust_loop_housekeeping_work_cpu() would queue it. Preemption stays
 * disabled from the choice to the queueing, so the CPU chosen cannot go
 * offline in between (taking a CPU down runs stop_machine()); once queued,
 * work on a CPU that goes offline runs on another (workqueue hotplug).
 */
bool rust_loop_queue_work_elsewhere(struct workqueue_struct *wq,
				    struct work_struct *work)
{
	int cpu = get_cpu(), next, target = -1;
	bool queued;

	for_each_cpu_wrap(next, cpu_online_mask, cpu + 1) {
		if (next != cpu && housekeeping_work(next)) {
			target = next;
			break;
		}
	}
	if (target < 0)
		target = housekeeping_work_cpu(cpu);
	queued = queue_work_on(target, wq, work);
	put_cpu();
	return queued;
}

/* task_is_running(): on a CPU or waiting for one, not asleep. */
bool rust_loop_task_is_running(struct task_struct *task)
{
	return task_is_running(task);
}

/*
 * The cgroups of a deferred request (loop_queue_rq() and loop_handle_cmd()
 * of loop.c): the blkcg of its first bio, and a reference on the memory
 * cgroup css of the same cgroup, under which the worker does its I/O.
 *
 * NULL for the root cgroup, where loop.c takes the root's css and a
 * reference on the root memcg: the worker is a kthread of the root cgroup
 * (per-CPU kworkers cannot be moved), so its I/O and its allocations go
 * to the root as they are, and associating it with the root changes
 * nothing but costs a reference and four calls per request.
 */
struct cgroup_subsys_state *rust_loop_rq_blkcg_css(struct request *rq)
{
#ifdef CONFIG_BLK_CGROUP
	struct cgroup_subsys_state *css;

	if (!rq->bio)
		return NULL;
	css = bio_blkcg_css(rq->bio);
	return css == blkcg_root_css ? NULL : css;
#else
	return NULL;
#endif
}

struct cgroup_subsys_state *rust_loop_get_memcg_css(struct cgroup_subsys_state *blkcg_css)
{
#if defined(CONFIG_BLK_CGROUP) && defined(CONFIG_MEMCG)
	if (blkcg_css)
		return cgroup_get_e_css(blkcg_css->cgroup, &memory_cgrp_subsys);
#endif
	return NULL;
}

void rust_loop_css_put(struct cgroup_subsys_state *css)
{
	css_put(css);
}

void rust_loop_kthread_associate_blkcg(struct cgroup_subsys_state *css)
{
	kthread_associate_blkcg(css);
}

struct mem_cgroup *rust_loop_set_active_memcg_css(struct cgroup_subsys_state *css)
{
	return set_active_memcg(mem_cgroup_from_css(css));
}

void rust_loop_set_active_memcg(struct mem_cgroup *memcg)
{
	set_active_memcg(memcg);
}

/*
 * loop_process_work(): the worker is not throttled for the dirty pages of
 * the device it serves, and its allocations do no I/O; restored as saved.
 */
unsigned int rust_loop_worker_flags_save(void)
{
	unsigned int flags = current->flags;

	current->flags |= PF_LOCAL_THROTTLE | PF_MEMALLOC_NOIO;
	return flags;
}

void rust_loop_worker_flags_restore(unsigned int flags)
{
	current->flags = flags;
}

void rust_loop_cond_resched(void)
{
	cond_resched();
}

void rust_loop_complete_request_direct(struct request *rq)
{
	blk_mq_complete_request_direct(rq, rq->q->mq_ops->complete);
}
