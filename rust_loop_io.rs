// SPDX-License-Identifier: GPL-2.0

//! The request path of a loop device: from `queue_rq` to the backing file
//! and back, without copying data (`sys::request::Request::read_write`
//! hands the request's own pages to the file as an `ITER_BVEC` iov_iter).
//!
//! Where `loop.c` always hops to a worker thread, a direct-I/O read or
//! write is first tried inline in `queue_rq` with `IOCB_NOWAIT`, on every
//! hardware queue; only a request that would block (`-EAGAIN`, or a partial
//! transfer) goes to the module's workqueue, where it is redone without
//! `IOCB_NOWAIT`. Buffered I/O, flushes, discards and write-zeroes always
//! go to the workqueue (see [`Io::bound`]). Direct I/O completes
//! asynchronously through the kiocb either way; the workqueue runs one work
//! item per request, so blocking requests of one device proceed in
//! parallel.
//!
//! Results follow `lo_complete_rq()`: errors become block statuses, a short
//! read completes what it got and requeues the rest, a read of nothing
//! zero-fills and fails. One deliberate difference: a short *write* is
//! completed and requeued the same way, where `loop.c` reports the whole
//! request done.

use crate::{
    sys::{
        file::BackingFile,
        helpers,
        request::{Op, Request, RwFlags, RwTarget, Status},
        uapi,
    },
    Config, LoState, LoopDevice,
};
use core::fmt;
use kernel::{
    prelude::*,
    sync::atomic::{Atomic, Relaxed},
};

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
    /// Reads may be tried inline with `IOCB_NOWAIT`.
    nowait_read: bool,
    /// Writes may be tried inline with `IOCB_NOWAIT`.
    nowait_write: bool,
}

impl Io {
    /// The request path of an unbound device: every request fails.
    pub(crate) fn unbound() -> Self {
        Io {
            file: None,
            offset: 0,
            direct: false,
            read_only: true,
            nowait_read: false,
            nowait_write: false,
        }
    }

    /// The request path for the configuration `cfg`.
    ///
    /// Only direct I/O is tried inline: a buffered read or write runs the
    /// backing file system's page-cache paths (readahead, writeback) in
    /// whatever context submitted the request, possibly under locks of the
    /// same classes one level up (a file system or a loop device stacked on
    /// this one), which is what loop.c's worker threads avoid, so those go
    /// to the worker. Direct I/O takes only try-locks with `IOCB_NOWAIT`.
    pub(crate) fn bound(cfg: &Config) -> Self {
        let direct = cfg.flags & uapi::LO_FLAGS_DIRECT_IO != 0;
        let nowait = direct && cfg.file.as_ref().is_some_and(BackingFile::can_nowait);
        Io {
            file: cfg.file.clone(),
            offset: cfg.offset,
            direct,
            read_only: cfg.flags & uapi::LO_FLAGS_READ_ONLY != 0,
            nowait_read: nowait,
            nowait_write: nowait,
        }
    }
}

impl RwTarget for Io {
    fn target(&self) -> Option<(&BackingFile, u64)> {
        self.file.as_ref().map(|f| (f, self.offset))
    }
}

/// Per-device request counters, shown in debugfs.
pub(crate) struct Stats {
    reads: Atomic<u64>,
    writes: Atomic<u64>,
    flushes: Atomic<u64>,
    discards: Atomic<u64>,
    write_zeroes: Atomic<u64>,
    bytes_read: Atomic<u64>,
    bytes_written: Atomic<u64>,
    /// Reads and writes submitted from `queue_rq` itself.
    inline_submits: Atomic<u64>,
    /// Requests handled by the workqueue (including retries).
    worker_submits: Atomic<u64>,
    /// Inline attempts that would have blocked and went to the worker.
    nowait_retries: Atomic<u64>,
    /// Bytes of reads and writes not covered by the request's own pages:
    /// what a bounce buffer would have copied. Stays 0.
    bytes_copied: Atomic<u64>,
    /// Reads, then writes, still to send straight to the worker after an
    /// inline attempt would have blocked (see [`NOWAIT_BACKOFF`]).
    backoff: [Atomic<u32>; 2],
}

/// After an inline attempt would have blocked, the next this many requests
/// in the same direction skip the attempt: a file system that refuses one
/// (a write lock held by a concurrent writer, say) tends to refuse the next,
/// and each refusal costs a second submission.
const NOWAIT_BACKOFF: u32 = 16;

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
            inline_submits: Atomic::new(0),
            worker_submits: Atomic::new(0),
            nowait_retries: Atomic::new(0),
            bytes_copied: Atomic::new(0),
            backoff: [Atomic::new(0), Atomic::new(0)],
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
            ("inline_submits", &self.inline_submits),
            ("worker_submits", &self.worker_submits),
            ("nowait_retries", &self.nowait_retries),
            ("bytes_copied", &self.bytes_copied),
        ];
        for (name, v) in lines {
            writeln!(f, "{} {}", name, v.load(Relaxed))?;
        }
        Ok(())
    }
}

/// `loop_queue_rq()`. `lo` is valid until the request is handed on, not
/// after: nothing below touches it once a request has left its hands.
pub(crate) fn queue_rq(lo: &LoopDevice, rq: Request<LoopDevice>) {
    if lo.state() != LoState::Bound {
        rq.end(Status::IOERR);
        return;
    }
    let stats = lo.stats();
    let op = rq.op();
    match op {
        Op::Read | Op::Write => {
            let write = op == Op::Write;
            if write {
                stats.writes.add(1, Relaxed);
                stats.bytes_written.add(u64::from(rq.bytes()), Relaxed);
            } else {
                stats.reads.add(1, Relaxed);
                stats.bytes_read.add(u64::from(rq.bytes()), Relaxed);
            }
            let io = rq.io();
            if write && io.read_only {
                rq.end(Status::IOERR);
                return;
            }
            let backoff = &stats.backoff[usize::from(write)];
            let skip = backoff.load(Relaxed);
            if skip > 0 {
                // Racy by design: a lost update only changes how many skip.
                backoff.store(skip - 1, Relaxed);
            }
            let nowait = if write {
                io.nowait_write
            } else {
                io.nowait_read
            };
            if skip > 0 || !nowait {
                stats.worker_submits.add(1, Relaxed);
                rq.defer();
                return;
            }
            let flags = RwFlags {
                direct: io.direct,
                nowait: true,
                dsync: rq.fua(),
            };
            stats.inline_submits.add(1, Relaxed);
            if let Err(rq) = rq.read_write(write, flags) {
                // It would block: the worker redoes it.
                stats.nowait_retries.add(1, Relaxed);
                stats.worker_submits.add(1, Relaxed);
                rq.defer();
            }
        }
        Op::Flush | Op::Discard | Op::WriteZeroes => {
            match op {
                Op::Flush => stats.flushes.add(1, Relaxed),
                Op::Discard => stats.discards.add(1, Relaxed),
                _ => stats.write_zeroes.add(1, Relaxed),
            }
            stats.worker_submits.add(1, Relaxed);
            rq.defer();
        }
        // do_req_filebacked() warns once and fails anything else.
        Op::Other => {
            kernel::pr_warn_once!("unexpected request operation\n");
            rq.end(Status::IOERR);
        }
    }
}

/// The accounting of a read or write handed to the backing file.
pub(crate) fn rw_submitted(lo: &LoopDevice, bytes: u32, zero_copy: u32) {
    if bytes != zero_copy {
        lo.stats()
            .bytes_copied
            .add(u64::from(bytes.abs_diff(zero_copy)), Relaxed);
    }
}

/// A request in the worker, where it may block (`loop_handle_cmd()`).
pub(crate) fn work(rq: Request<LoopDevice>) {
    let op = rq.op();
    let status = match op {
        Op::Read | Op::Write => {
            let write = op == Op::Write;
            let io = rq.io();
            if write && io.read_only {
                Status::IOERR
            } else {
                let flags = RwFlags {
                    direct: io.direct,
                    nowait: false,
                    dsync: rq.fua(),
                };
                match rq.read_write(write, flags) {
                    Ok(()) => return,
                    Err(rq) => {
                        rq.end(Status::IOERR);
                        return;
                    }
                }
            }
        }
        // lo_req_flush(): EINVAL (no fsync) is passed on, any other error
        // is an I/O error.
        Op::Flush => match rq.io().file.as_ref().map(BackingFile::fsync) {
            Some(Ok(())) => Status::OK,
            Some(Err(e)) if e == EINVAL => Status::from_errno(e.to_errno()),
            _ => Status::IOERR,
        },
        // Zeroes that must stay allocated, or holes.
        Op::WriteZeroes if rq.nounmap() => fallocate(&rq, helpers::FALLOC_FL_ZERO_RANGE),
        Op::WriteZeroes | Op::Discard => fallocate(&rq, helpers::FALLOC_FL_PUNCH_HOLE),
        Op::Other => Status::IOERR,
    };
    rq.end(status);
}

/// `lo_fallocate()`: discard and write-zeroes as `fallocate()` on the file;
/// a file system that cannot do it gets the limits cleared, so the block
/// layer stops asking. `EINVAL` and `EOPNOTSUPP` reach the submitter as
/// such, anything else as an I/O error.
fn fallocate(rq: &Request<LoopDevice>, mode: i32) -> Status {
    let io = rq.io();
    let Some(file) = io.file.as_ref() else {
        return Status::IOERR;
    };
    if rq.queue().max_discard_sectors() == 0 {
        return Status::NOTSUPP;
    }
    let mode = mode | helpers::FALLOC_FL_KEEP_SIZE;
    match file.fallocate(mode, rq.pos() + io.offset, u64::from(rq.bytes())) {
        Ok(()) => Status::OK,
        Err(e) if e == EOPNOTSUPP => {
            let _ = rq.queue().update_limits(|lim| {
                if mode & helpers::FALLOC_FL_ZERO_RANGE != 0 {
                    lim.clear_write_zeroes();
                }
                if mode & helpers::FALLOC_FL_PUNCH_HOLE != 0 {
                    lim.clear_discard();
                }
            });
            Status::NOTSUPP
        }
        // loop.c passes EINVAL on (a range the file system refuses).
        Err(e) if e == EINVAL => Status::from_errno(e.to_errno()),
        Err(_) => Status::IOERR,
    }
}

/// `lo_complete_rq()`: the outcome of a read or write.
pub(crate) fn complete(rq: Request<LoopDevice>) {
    let r = rq.rw_result();
    let bytes = i64::from(rq.bytes());

    // An inline attempt that would have blocked, or got only part of the
    // way, is redone in the worker; reads and writes are idempotent.
    let eagain = i64::from(EAGAIN.to_errno());
    let eopnotsupp = i64::from(EOPNOTSUPP.to_errno());
    if r.nowait && (r.ret == eagain || r.ret == eopnotsupp || (0..bytes).contains(&r.ret)) {
        let stats = rq.driver().stats();
        stats.nowait_retries.add(1, Relaxed);
        stats.worker_submits.add(1, Relaxed);
        stats.backoff[usize::from(rq.op() == Op::Write)].store(NOWAIT_BACKOFF, Relaxed);
        rq.defer();
        return;
    }
    if r.ret < 0 {
        rq.end(Status::from_errno(r.ret as i32));
    } else if r.ret >= bytes {
        rq.end(Status::OK);
    } else if r.ret > 0 {
        // Short transfer: complete what was done and retry the rest.
        rq.advance(r.ret as u32);
    } else if rq.op() == Op::Read {
        // Nothing read: zero-fill and fail, as loop.c does.
        rq.zero_fill();
        rq.end(Status::IOERR);
    } else {
        rq.end(Status::IOERR);
    }
}
