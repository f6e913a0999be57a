// SPDX-License-Identifier: GPL-2.0

//! The request path of a loop device: from `queue_rq` to the backing file
//! and back, without copying data (`sys::request::Request::read_write`
//! hands the request's own pages to the file as an `ITER_BVEC` iov_iter).
//!
//! As in `loop.c`, `queue_rq` never touches the backing file: every request
//! goes to the device's workqueue ([`work`]), which submits it. `queue_rq`
//! runs in whatever context dispatched the request, often the submitter's
//! own plug flush (`blk_finish_plug()` walking `current->plug`); reaching
//! the backing file from there would run the backing file system, and the
//! block device under it, inside that flush. A bio submitted to a lower
//! blk-mq device from there is added to the very plug list being flushed,
//! which corrupts it (the oops of `tests/stack_test.sh`), and the backing
//! file system would take its locks while the upper one holds locks of the
//! same classes. The worker has no plug, no locks of the submitter's and a
//! stack of its own. Reads and writes of the root cgroup are run one after
//! another by one work item, as `loop.c`'s root worker runs its list:
//! direct I/O completes asynchronously through the kiocb, buffered I/O in
//! order. I/O of any other cgroup, flushes, discards and write-zeroes get
//! a work item each and proceed in parallel, so that no cgroup waits
//! behind another's throttled or blocked writes (see [`queue_rq`]). Each
//! device has a workqueue of its own, so a device stacked on another one,
//! or one whose backing store hangs, never waits for work slots of another
//! device.
//!
//! As in `loop_handle_cmd()`, the worker does a request's I/O in the name
//! of the cgroup that issued it: the blkcg of its first bio and the memory
//! cgroup of the same cgroup (see `sys::request::RequestWorker`), so a
//! container's writes through a loop device count against its own
//! `io.max` on the backing disk and its own `memory.max`.
//!
//! Results follow `lo_complete_rq()`: errors become block statuses, a short
//! read completes what it got and requeues the rest, a read of nothing
//! zero-fills and fails. Two deliberate differences, where `loop.c` loses
//! data: a short *write* is completed and requeued the same way, where
//! `loop.c` reports the whole request done; and only whole logical blocks
//! are completed, where `loop.c` advances a request by a byte count that
//! need not be a multiple of 512 and retries the rest at the wrong place
//! (a backing file system that returns arbitrary short counts, as FUSE
//! may). A transfer of less than one block fails the request.

use crate::{
    rust_loop_dev::LoopDevice,
    rust_loop_state::{Io, LoState},
    sys::{
        helpers,
        placement::Kick,
        request::{Op, Request, RwFlags, RwTarget, Status},
    },
};
use core::fmt;
use kernel::{
    prelude::*,
    sync::atomic::{Atomic, Relaxed},
};

/// Per-device request counters, shown in debugfs.
pub(crate) struct Stats {
    reads: Atomic<u64>,
    writes: Atomic<u64>,
    flushes: Atomic<u64>,
    discards: Atomic<u64>,
    write_zeroes: Atomic<u64>,
    bytes_read: Atomic<u64>,
    bytes_written: Atomic<u64>,
    /// Requests that sent the worker to the next CPU after their own
    /// ([`Kick::Elsewhere`]): it had found their submitter preempted.
    worker_elsewhere: Atomic<u64>,
}

impl Stats {
    pub(crate) fn new() -> Self {
        Stats {
            reads: Atomic::new(0),
            writes: Atomic::new(0),
            flushes: Atomic::new(0),
            discards: Atomic::new(0),
            write_zeroes: Atomic::new(0),
            bytes_read: Atomic::new(0),
            bytes_written: Atomic::new(0),
            worker_elsewhere: Atomic::new(0),
        }
    }
}

impl fmt::Debug for Stats {
    /// One `name value` line per counter.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines = [
            ("reads", &self.reads),
            ("writes", &self.writes),
            ("flushes", &self.flushes),
            ("discards", &self.discards),
            ("write_zeroes", &self.write_zeroes),
            ("bytes_read", &self.bytes_read),
            ("bytes_written", &self.bytes_written),
            ("worker_elsewhere", &self.worker_elsewhere),
        ];
        for (name, v) in lines {
            writeln!(f, "{} {}", name, v.load(Relaxed))?;
        }
        Ok(())
    }
}

/// `loop_queue_rq()`: counts the request and hands it to the worker.
/// Nothing here blocks or reaches the backing file (see the module's
/// documentation for why).
///
/// Reads and writes of the root cgroup join the worker's list, which one
/// work item runs in order, as `loop.c`'s root worker runs its commands:
/// a direct submission returns once the backing file has the I/O in
/// flight, so one work item keeps up with many of them at the cost of one
/// wakeup, and buffered I/O runs there one request after the other (a
/// work item per request cost more per 4k read at queue depth 32 than the
/// list: `Documentation/benchmark.rst`). Any I/O of another cgroup may
/// wait for that cgroup's limits (its `io.max`, io.latency or io.cost
/// throttling, its dirty limits), a direct write as much as a buffered
/// one, and flushes, discards and write-zeroes may block in the backing
/// file system for as long as it takes: each such request gets a work
/// item of its own and they run side by side, so that no cgroup waits
/// behind another's, where `loop.c` gives each cgroup a worker and runs a
/// flush in its list.
pub(crate) fn queue_rq(lo: &LoopDevice, rq: Request<LoopDevice>) {
    if lo.state() != LoState::Bound {
        rq.end(Status::IOERR);
        return;
    }
    let stats = lo.stats();
    let bytes = u64::from(rq.bytes());
    match rq.op() {
        Op::Read => {
            stats.reads.add(1, Relaxed);
            stats.bytes_read.add(bytes, Relaxed);
        }
        Op::Write => {
            stats.writes.add(1, Relaxed);
            stats.bytes_written.add(bytes, Relaxed);
        }
        Op::Flush => stats.flushes.add(1, Relaxed),
        Op::Discard => stats.discards.add(1, Relaxed),
        Op::WriteZeroes => stats.write_zeroes.add(1, Relaxed),
    }
    let kick = lo.worker().queue(rq, |rq, root| {
        root && matches!(rq.op(), Op::Read | Op::Write)
    });
    if kick == Kick::Elsewhere {
        stats.worker_elsewhere.add(1, Relaxed);
    }
}

/// A request in the worker, where it may block (`loop_handle_cmd()`).
pub(crate) fn work(mut rq: Request<LoopDevice>) {
    rq.clear_nowait();
    let op = rq.op();
    let Some(io) = rq.io() else {
        rq.end(Status::IOERR);
        return;
    };
    // Every operation that changes data fails on a read-only device, as
    // `op_is_write()` in loop_handle_cmd(): discard and write-zeroes too,
    // since `fallocate` does not check that the file was opened for
    // writing. The ioctls on the device refuse them earlier, but a bio
    // stacked on it (device-mapper opens its devices for writing without
    // checking read-only) reaches this point.
    if op.is_write() && io.read_only() {
        rq.end(Status::IOERR);
        return;
    }
    let status = match op {
        Op::Read | Op::Write => {
            // No REQ_FUA reaches the driver: as loop.c, the device does
            // not advertise FUA, so the block layer turns a FUA write
            // into a write and a flush.
            let flags = RwFlags {
                direct: io.direct(),
            };
            if let Err(rq) = rq.read_write(op == Op::Write, flags) {
                rq.end(Status::IOERR);
            }
            return;
        }
        // lo_req_flush() and loop_handle_cmd(): every error is an I/O
        // error.
        Op::Flush => match io.target().map(|(file, _)| file.fsync()) {
            Some(Ok(())) => Status::OK,
            _ => Status::IOERR,
        },
        // Zeroes that must stay allocated, or holes.
        Op::WriteZeroes if rq.nounmap() => fallocate(&rq, io, helpers::FALLOC_FL_ZERO_RANGE),
        Op::WriteZeroes | Op::Discard => fallocate(&rq, io, helpers::FALLOC_FL_PUNCH_HOLE),
    };
    rq.end(status);
}

/// `lo_fallocate()`: discard and write-zeroes as `fallocate()` on the file;
/// a file system that cannot do it gets the limits cleared, so the block
/// layer stops asking. `EOPNOTSUPP` reaches the submitter as such,
/// anything else as an I/O error (loop_handle_cmd() turns the `EINVAL`
/// that lo_fallocate() passes on into `EIO` too).
///
/// The limits are cleared only if `limits_lock` is free: this request
/// holds the queue, and an ioctl holding `limits_lock` may be waiting to
/// freeze it (`LOOP_SET_BLOCK_SIZE`, `LOOP_SET_DIRECT_IO`), a deadlock
/// `loop.c`'s `loop_clear_limits()` walks into. When the lock is busy, a
/// later request clears them.
fn fallocate(rq: &Request<LoopDevice>, io: &Io, mode: i32) -> Status {
    let Some((file, offset)) = io.target() else {
        return Status::IOERR;
    };
    if rq.queue().max_discard_sectors() == 0 {
        return Status::NOTSUPP;
    }
    let mode = mode | helpers::FALLOC_FL_KEEP_SIZE;
    match file.fallocate(mode, rq.pos() + offset, u64::from(rq.bytes())) {
        Ok(()) => Status::OK,
        Err(e) if e == EOPNOTSUPP => {
            let _ = rq.queue().try_update_limits(|lim| {
                if mode & helpers::FALLOC_FL_ZERO_RANGE != 0 {
                    lim.clear_write_zeroes();
                }
                if mode & helpers::FALLOC_FL_PUNCH_HOLE != 0 {
                    lim.clear_discard();
                }
            });
            Status::NOTSUPP
        }
        Err(_) => Status::IOERR,
    }
}

/// `lo_complete_rq()`: the outcome of a read or write.
pub(crate) fn complete(rq: Request<LoopDevice>) {
    let ret = rq.rw_result();
    let bytes = i64::from(rq.bytes());
    if ret < 0 {
        rq.end(Status::from_errno(ret as i32));
    } else if ret >= bytes {
        rq.end(Status::OK);
    } else if let Err(rq) = rq.advance(ret as u32) {
        // Not one whole block done: a read is zero-filled and fails, as
        // loop.c does when it read nothing; so does a write.
        if rq.op() == Op::Read {
            rq.zero_fill();
        }
        rq.end(Status::IOERR);
    }
    // Otherwise the whole blocks done are completed and the rest is
    // retried (see `Request::advance`).
}
