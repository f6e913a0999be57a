/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rust_loop: C wrappers for the static inline kernel functions the Rust
 * side needs and no binding reaches (rust/helpers/ does not cover them).
 * Each is a one-line call of the inline it is named after; the Rust
 * declarations are in sys/helpers.rs. Pointers are void * so the Rust
 * extern block needs no non-FFI-safe struct types.
 *
 * It also lists the values of the kernel macros that bindgen cannot see
 * (casts with __force) and that the Rust side defines by hand; the helper
 * object checks them at build time against the kernel's own definitions.
 */
#ifndef RUST_LOOP_HELPERS_H
#define RUST_LOOP_HELPERS_H

#define RUST_LOOP_BLK_OPEN_WRITE	(1U << 1)
#define RUST_LOOP_BLK_OPEN_EXCL		(1U << 2)
#define RUST_LOOP_FMODE_WRITE		(1U << 1)
#define RUST_LOOP_FMODE_CAN_ODIRECT	(1U << 22)
#define RUST_LOOP_XA_MARK_1		1U
#define RUST_LOOP_GFP_IO		(1U << 6)
#define RUST_LOOP_GFP_FS		(1U << 7)
#define RUST_LOOP_FALLOC_FL_KEEP_SIZE	0x01
#define RUST_LOOP_FALLOC_FL_PUNCH_HOLE	0x02
#define RUST_LOOP_FALLOC_FL_ZERO_RANGE	0x10
#define RUST_LOOP_KSTATFS_SIZE		120
#define RUST_LOOP_KSTATFS_BSIZE_OFFSET	8
#define RUST_LOOP_REQ_NOUNMAP		(1U << 28)
#define RUST_LOOP_BLK_FEAT_WRITE_CACHE	(1U << 0)
#define RUST_LOOP_BLK_STS_NOTSUPP	1
#define RUST_LOOP_BLK_STS_IOERR		10

/*
 * The loop UAPI numbers that sys/uapi.rs spells out (rust/uapi does not
 * include <linux/loop.h>), checked against the kernel's header.
 */
#define RUST_LOOP_LOOP_SET_FD		0x4C00
#define RUST_LOOP_LOOP_CLR_FD		0x4C01
#define RUST_LOOP_LOOP_SET_STATUS	0x4C02
#define RUST_LOOP_LOOP_GET_STATUS	0x4C03
#define RUST_LOOP_LOOP_SET_STATUS64	0x4C04
#define RUST_LOOP_LOOP_GET_STATUS64	0x4C05
#define RUST_LOOP_LOOP_CHANGE_FD	0x4C06
#define RUST_LOOP_LOOP_SET_CAPACITY	0x4C07
#define RUST_LOOP_LOOP_SET_DIRECT_IO	0x4C08
#define RUST_LOOP_LOOP_SET_BLOCK_SIZE	0x4C09
#define RUST_LOOP_LOOP_CONFIGURE	0x4C0A
#define RUST_LOOP_LOOP_CTL_ADD		0x4C80
#define RUST_LOOP_LOOP_CTL_REMOVE	0x4C81
#define RUST_LOOP_LOOP_CTL_GET_FREE	0x4C82
#define RUST_LOOP_LO_FLAGS_READ_ONLY	1
#define RUST_LOOP_LO_FLAGS_AUTOCLEAR	4
#define RUST_LOOP_LO_FLAGS_PARTSCAN	8
#define RUST_LOOP_LO_FLAGS_DIRECT_IO	16
#define RUST_LOOP_LO_NAME_SIZE		64
#define RUST_LOOP_LO_KEY_SIZE		32
#define RUST_LOOP_LO_CRYPT_NONE		0
#define RUST_LOOP_LO_CRYPT_XOR		1
#define RUST_LOOP_LO_CRYPT_CRYPTOAPI	18

/*
 * The layouts of the loop UAPI structures as sys/uapi.rs spells them out
 * (x86-64, and compat_loop_info of 32-bit x86 user space). The helper
 * object checks them against the kernel's own structures, and the Rust side
 * checks its structures against the same values (sys/helpers.rs), so a port
 * to an architecture with other layouts fails to build instead of reading
 * the wrong fields in LOOP_{SET,GET}_STATUS. compat_loop_info is private to
 * loop.c: rust_loop_helpers.c repeats its definition.
 */
/* struct loop_info */
#define RUST_LOOP_LOOP_INFO_SIZE			168
#define RUST_LOOP_LOOP_INFO_OFF_LO_NUMBER		0
#define RUST_LOOP_LOOP_INFO_OFF_LO_DEVICE		8
#define RUST_LOOP_LOOP_INFO_OFF_LO_INODE		16
#define RUST_LOOP_LOOP_INFO_OFF_LO_RDEVICE		24
#define RUST_LOOP_LOOP_INFO_OFF_LO_OFFSET		32
#define RUST_LOOP_LOOP_INFO_OFF_LO_ENCRYPT_TYPE		36
#define RUST_LOOP_LOOP_INFO_OFF_LO_ENCRYPT_KEY_SIZE	40
#define RUST_LOOP_LOOP_INFO_OFF_LO_FLAGS		44
#define RUST_LOOP_LOOP_INFO_OFF_LO_NAME			48
#define RUST_LOOP_LOOP_INFO_OFF_LO_ENCRYPT_KEY		112
#define RUST_LOOP_LOOP_INFO_OFF_LO_INIT			144
#define RUST_LOOP_LOOP_INFO_OFF_RESERVED		160
/* struct loop_info64 */
#define RUST_LOOP_LOOP_INFO64_SIZE			232
#define RUST_LOOP_LOOP_INFO64_OFF_LO_DEVICE		0
#define RUST_LOOP_LOOP_INFO64_OFF_LO_INODE		8
#define RUST_LOOP_LOOP_INFO64_OFF_LO_RDEVICE		16
#define RUST_LOOP_LOOP_INFO64_OFF_LO_OFFSET		24
#define RUST_LOOP_LOOP_INFO64_OFF_LO_SIZELIMIT		32
#define RUST_LOOP_LOOP_INFO64_OFF_LO_NUMBER		40
#define RUST_LOOP_LOOP_INFO64_OFF_LO_ENCRYPT_TYPE	44
#define RUST_LOOP_LOOP_INFO64_OFF_LO_ENCRYPT_KEY_SIZE	48
#define RUST_LOOP_LOOP_INFO64_OFF_LO_FLAGS		52
#define RUST_LOOP_LOOP_INFO64_OFF_LO_FILE_NAME		56
#define RUST_LOOP_LOOP_INFO64_OFF_LO_CRYPT_NAME		120
#define RUST_LOOP_LOOP_INFO64_OFF_LO_ENCRYPT_KEY	184
#define RUST_LOOP_LOOP_INFO64_OFF_LO_INIT		216
/* struct loop_config */
#define RUST_LOOP_LOOP_CONFIG_SIZE			304
#define RUST_LOOP_LOOP_CONFIG_OFF_FD			0
#define RUST_LOOP_LOOP_CONFIG_OFF_BLOCK_SIZE		4
#define RUST_LOOP_LOOP_CONFIG_OFF_INFO			8
#define RUST_LOOP_LOOP_CONFIG_OFF_RESERVED		240
/* struct compat_loop_info */
#define RUST_LOOP_COMPAT_LOOP_INFO_SIZE			140
#define RUST_LOOP_COMPAT_LOOP_INFO_OFF_LO_NUMBER	0
#define RUST_LOOP_COMPAT_LOOP_INFO_OFF_LO_DEVICE	4
#define RUST_LOOP_COMPAT_LOOP_INFO_OFF_LO_INODE		8
#define RUST_LOOP_COMPAT_LOOP_INFO_OFF_LO_RDEVICE	12
#define RUST_LOOP_COMPAT_LOOP_INFO_OFF_LO_OFFSET	16
#define RUST_LOOP_COMPAT_LOOP_INFO_OFF_LO_ENCRYPT_TYPE	20
#define RUST_LOOP_COMPAT_LOOP_INFO_OFF_LO_ENCRYPT_KEY_SIZE	24
#define RUST_LOOP_COMPAT_LOOP_INFO_OFF_LO_FLAGS		28
#define RUST_LOOP_COMPAT_LOOP_INFO_OFF_LO_NAME		32
#define RUST_LOOP_COMPAT_LOOP_INFO_OFF_LO_ENCRYPT_KEY	96
#define RUST_LOOP_COMPAT_LOOP_INFO_OFF_LO_INIT		128
#define RUST_LOOP_COMPAT_LOOP_INFO_OFF_RESERVED		136

struct request_queue;
struct queue_limits;
struct kiocb;
struct request;
struct cgroup_subsys_state;
struct mem_cgroup;
struct mutex;
struct workqueue_struct;
struct work_struct;
struct task_struct;

#include <linux/types.h>

void rust_loop_queue_limits_start_update(struct request_queue *q,
					 struct queue_limits *lim);
bool rust_loop_queue_limits_try_start_update(struct request_queue *q,
					     struct queue_limits *lim);
void rust_loop_queue_limits_cancel_update(struct request_queue *q);
unsigned int rust_loop_freeze_queue(struct request_queue *q);
void rust_loop_unfreeze_queue(struct request_queue *q, unsigned int memflags);
void rust_loop_kiocb_start_write(struct kiocb *iocb);
void rust_loop_kiocb_end_write(struct kiocb *iocb);
unsigned int rust_loop_memalloc_noio_save(void);
void rust_loop_memalloc_noio_restore(unsigned int flags);
struct cgroup_subsys_state *rust_loop_rq_blkcg_css(struct request *rq);
struct cgroup_subsys_state *rust_loop_get_memcg_css(struct cgroup_subsys_state *blkcg_css);
void rust_loop_css_put(struct cgroup_subsys_state *css);
void rust_loop_kthread_associate_blkcg(struct cgroup_subsys_state *css);
struct mem_cgroup *rust_loop_set_active_memcg_css(struct cgroup_subsys_state *css);
void rust_loop_set_active_memcg(struct mem_cgroup *memcg);
int rust_loop_mutex_lock_killable(struct mutex *lock);
int rust_loop_housekeeping_work_cpu(void);
bool rust_loop_queue_work_elsewhere(struct workqueue_struct *wq,
				    struct work_struct *work);
bool rust_loop_task_is_running(struct task_struct *task);
unsigned int rust_loop_worker_flags_save(void);
void rust_loop_worker_flags_restore(unsigned int flags);
void rust_loop_cond_resched(void);
void rust_loop_complete_request_direct(struct request *rq);

#endif /* RUST_LOOP_HELPERS_H */
