# SPDX-License-Identifier: GPL-2.0
#
# The ioctl side of tests/blktests_loop_test.sh: the calls its cases make
# directly (no tool issues them, or not with the exact errno), and the
# races that need more iterations than a shell loop of execs gives on the
# debug kernel under TCG. One subcommand per call; each prints one line of
# results, which the shell test compares with what loop.c gives.
#
#   python3 blktests_loop_helper.py SUBCOMMAND ARGS...

import collections
import fcntl
import mmap
import os
import select
import socket
import sys
import time

from loop_uapi import (LO_FLAGS_PARTSCAN, LO_FLAGS_READ_ONLY, LOOP_CHANGE_FD,
                       LOOP_CLR_FD, LOOP_CONFIGURE, LOOP_CTL_GET_FREE,
                       LOOP_GET_STATUS, LOOP_GET_STATUS64, LOOP_SET_BLOCK_SIZE,
                       LOOP_SET_DIRECT_IO, ename, loop_config)


def counts(res):
    """The outcomes of a race as "outcome=count ...", sorted."""
    return " ".join("%s=%d" % kv for kv in sorted(res.items()))


def call(fd, req, arg=0):
    """ioctl(fd, req, arg): "OK" or the errno's name."""
    try:
        fcntl.ioctl(fd, req, arg)
        return "OK"
    except OSError as e:
        return ename(e.errno)


def configure(dev_fd, file_fd, flags=0):
    return call(dev_fd, LOOP_CONFIGURE, loop_config(file_fd, flags))


def sysread(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return "<absent>"


def dio_roundtrip(dev, size, seed):
    """Writes SIZE bytes at 0 of DEV with O_DIRECT and reads them back
    with O_DIRECT: "ok", or what went wrong."""
    pat = bytes((seed + i * 7) & 0xFF for i in range(size))
    wbuf = mmap.mmap(-1, max(size, 4096))
    wbuf[:size] = pat
    rbuf = mmap.mmap(-1, max(size, 4096))
    try:
        fd = os.open(dev, os.O_RDWR | os.O_DIRECT)
    except OSError as e:
        return "open:" + ename(e.errno)
    try:
        n = os.pwritev(fd, [memoryview(wbuf)[:size]], 0)
        if n != size:
            return "short-write:%d" % n
        n = os.preadv(fd, [memoryview(rbuf)[:size]], 0)
        if n != size:
            return "short-read:%d" % n
    except OSError as e:
        return "io:" + ename(e.errno)
    finally:
        os.close(fd)
    return "ok" if rbuf[:size] == pat else "mismatch"


# get_status_null BOUND_DEV UNBOUND_DEV: LOOP_GET_STATUS and
# LOOP_GET_STATUS64 with a NULL argument on each.
def get_status_null(bound, unbound):
    out = []
    for dev in (bound, unbound):
        fd = os.open(dev, os.O_RDONLY)
        out.append(call(fd, LOOP_GET_STATUS, 0))
        out.append(call(fd, LOOP_GET_STATUS64, 0))
        os.close(fd)
    print(" ".join(out))


# block_sizes DEV STEP...: each STEP in turn, a number for
# LOOP_SET_BLOCK_SIZE to it, then a block written and read back with
# O_DIRECT at that size if the ioctl succeeded; dio0 or dio1 for
# LOOP_SET_DIRECT_IO off or on. Prints "default:LIMITS" and per step
# "STEP:RESULT:LIMITS[:ROUNDTRIP]", LIMITS being the logical block size
# (or "LOGICAL/PHYSICAL/IO_MIN" when they differ) and the dio attribute.
def block_sizes(dev, *steps):
    name = os.path.basename(dev)
    q = "/sys/block/%s/queue/" % name

    def limits():
        v = [sysread(q + f) for f in ("logical_block_size",
                                       "physical_block_size",
                                       "minimum_io_size")]
        lbs = v[0] if v.count(v[0]) == 3 else "/".join(v)
        return "%s:dio=%s" % (lbs, sysread("/sys/block/%s/loop/dio" % name))

    out = ["default:" + limits()]
    for i, s in enumerate(steps):
        fd = os.open(dev, os.O_RDWR)
        if s.startswith("dio"):
            r = call(fd, LOOP_SET_DIRECT_IO, int(s[3:]))
        else:
            r = call(fd, LOOP_SET_BLOCK_SIZE, int(s))
        os.close(fd)
        item = "%s:%s:%s" % (s, r, limits())
        if r == "OK" and not s.startswith("dio"):
            item += ":" + dio_roundtrip(dev, int(s) or 512, i + 1)
        out.append(item)
    print(" ".join(out))


# dio_roundtrip DEV SIZE
def dio(dev, size):
    print(dio_roundtrip(dev, int(size), 0x5A))


# open_close DEV N: opens and closes DEV N times; the first failure.
def open_close(dev, n):
    for i in range(int(n)):
        try:
            os.close(os.open(dev, os.O_RDONLY))
        except OSError as e:
            print("open %d: %s" % (i, ename(e.errno)))
            return
    print("ok")


# change_fd_race DEV FILE0 FILE1 SECONDS: DEV is bound read-only; one
# process switches its backing file between FILE0 and FILE1 with
# LOOP_CHANGE_FD, another binds a free loop device on top of DEV and
# unbinds it again, for SECONDS. Prints the count of each outcome.
def change_fd_race(dev, f0, f1, secs):
    end = time.monotonic() + float(secs)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        res = collections.Counter()
        ctl = os.open("/dev/loop-control", os.O_RDWR)
        while time.monotonic() < end:
            try:
                top = "/dev/loop%d" % fcntl.ioctl(ctl, LOOP_CTL_GET_FREE)
                tfd = os.open(top, os.O_RDWR)
            except OSError as e:
                k = "free/open:" + ename(e.errno)
                res[k] += 1
                continue
            # As losetup: the lower device is read-only, open it so.
            lfd = os.open(dev, os.O_RDONLY)
            k = "setup:" + configure(tfd, lfd, LO_FLAGS_READ_ONLY)
            os.close(lfd)
            res[k] += 1
            if k == "setup:OK":
                k = "detach:" + call(tfd, LOOP_CLR_FD)
                res[k] += 1
            os.close(tfd)
        os.write(w, counts(res).encode())
        os._exit(0)
    os.close(w)
    res = collections.Counter()
    fds = [os.open(f0, os.O_RDWR), os.open(f1, os.O_RDWR)]
    os.pwrite(fds[0], b"file0", 0)
    os.pwrite(fds[1], b"file1", 0)
    dfd = os.open(dev, os.O_RDWR)
    i = 1
    while time.monotonic() < end:
        k = "change:" + call(dfd, LOOP_CHANGE_FD, fds[i])
        res[k] += 1
        i ^= 1
    os.close(dfd)
    os.waitpid(pid, 0)
    child = os.read(r, 4096).decode()
    # What the device reads now, past any page cache.
    buf = mmap.mmap(-1, 4096)
    dfd = os.open(dev, os.O_RDONLY | os.O_DIRECT)
    os.preadv(dfd, [buf], 0)
    os.close(dfd)
    print(counts(res), child,
          "reads=%s" % buf[:5].decode(errors="replace"), "last=%d" % (i ^ 1))


# uevents(sock, name, last, secs): the uevents of loop device NAME and
# its partitions on SOCK within SECS seconds, or until 0.5 s after one
# equal to LAST, as "ACTION@DEVPATH(DEVTYPE)[KEY=VALUE,...]" (the keys but
# ACTION, DEVPATH, DEVTYPE, SUBSYSTEM, SEQNUM, DISKSEQ, MAJOR, MINOR,
# DEVNAME), the device's name written as loopN.
def uevents(sock, name, last, secs):
    events = []
    end = time.monotonic() + secs
    skip = ("ACTION", "DEVPATH", "DEVTYPE", "SUBSYSTEM", "SEQNUM", "DISKSEQ",
            "MAJOR", "MINOR", "DEVNAME")
    while True:
        left = end - time.monotonic()
        if left <= 0 or not select.select([sock], [], [], left)[0]:
            break
        msg = sock.recv(65536).split(b"\0")
        env = dict(x.decode().split("=", 1) for x in msg[1:] if b"=" in x)
        p = env.get("DEVPATH", "")
        if "/block/%s" % name not in p:
            continue
        ev = "%s@%s(%s)" % (env.get("ACTION"), p.replace(name, "loopN"),
                            env.get("DEVTYPE"))
        if ev == last:
            end = min(end, time.monotonic() + 0.5)
        extra = ",".join("%s=%s" % (k, v.replace(name, "loopN"))
                         for k, v in sorted(env.items()) if k not in skip)
        events.append(ev + ("[%s]" % extra if extra else ""))
    return events


# configure_uevents DEV FILE: LOOP_CONFIGURE with LO_FLAGS_PARTSCAN of
# FILE (a table of two partitions) on DEV, then LOOP_CLR_FD, while
# listening to the kernel's uevents; prints the result of each and the
# uevents that followed it (see uevents()).
def configure_uevents(dev, path):
    name = os.path.basename(dev)
    p = "/devices/virtual/block/loopN"
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM,
                         15)  # NETLINK_KOBJECT_UEVENT
    sock.bind((0, 1))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    dfd = os.open(dev, os.O_RDWR)
    ffd = os.open(path, os.O_RDWR)
    r = configure(dfd, ffd, LO_FLAGS_PARTSCAN)
    os.close(ffd)
    os.close(dfd)
    out = ["attach:" + r] + uevents(sock, name, "add@%s/loopNp2(partition)" % p, 3)
    dfd = os.open(dev, os.O_RDWR)
    r = call(dfd, LOOP_CLR_FD)
    os.close(dfd)
    out += ["detach:" + r] + uevents(sock, name, "remove@%s/loopNp2(partition)" % p, 2)
    print(" ".join(out))


# change_fd_uevents DEV FILE COPY: DEV bound read-only to FILE (a table
# of two partitions) with LO_FLAGS_PARTSCAN, then LOOP_CHANGE_FD to COPY
# (the same bytes) while listening to the kernel's uevents, then
# LOOP_CLR_FD; prints the result of the change and the uevents that
# followed it (see uevents()).
def change_fd_uevents(dev, path, copy):
    name = os.path.basename(dev)
    p = "/devices/virtual/block/loopN"
    dfd = os.open(dev, os.O_RDONLY)
    ffd = os.open(path, os.O_RDONLY)
    r = configure(dfd, ffd, LO_FLAGS_PARTSCAN | LO_FLAGS_READ_ONLY)
    os.close(ffd)
    if r != "OK":
        os.close(dfd)
        print("attach:" + r)
        return
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM,
                         15)  # NETLINK_KOBJECT_UEVENT
    sock.bind((0, 1))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    cfd = os.open(copy, os.O_RDONLY)
    r = call(dfd, LOOP_CHANGE_FD, cfd)
    os.close(cfd)
    out = ["change_fd:" + r] + uevents(sock, name, "", 2)
    call(dfd, LOOP_CLR_FD)
    os.close(dfd)
    print(" ".join(out))


# partscan_race DEV FILE SECONDS: one process binds FILE to DEV with
# LO_FLAGS_PARTSCAN and reads its first partition; another unbinds DEV,
# for SECONDS. Prints the count of each outcome.
def partscan_race(dev, path, secs):
    end = time.monotonic() + float(secs)
    part = dev + "p1"
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        res = collections.Counter()
        while time.monotonic() < end:
            try:
                dfd = os.open(dev, os.O_RDWR)
            except OSError as e:
                k = "open:" + ename(e.errno)
                res[k] += 1
                continue
            k = "detach:" + call(dfd, LOOP_CLR_FD)
            res[k] += 1
            os.close(dfd)
        os.write(w, counts(res).encode())
        os._exit(0)
    os.close(w)
    res = collections.Counter()
    ffd = os.open(path, os.O_RDWR)
    while time.monotonic() < end:
        try:
            dfd = os.open(dev, os.O_RDWR)
        except OSError as e:
            k = "open:" + ename(e.errno)
            res[k] += 1
            continue
        k = "attach:" + configure(dfd, ffd, LO_FLAGS_PARTSCAN)
        res[k] += 1
        os.close(dfd)
        if k == "attach:OK":
            try:
                pfd = os.open(part, os.O_RDONLY)
                os.pread(pfd, 4096, 0)
                os.close(pfd)
                k = "read-p1:OK"
            except OSError as e:
                k = "read-p1:" + ename(e.errno)
            res[k] += 1
    os.close(ffd)
    os.waitpid(pid, 0)
    child = os.read(r, 4096).decode()
    print(counts(res), child)


if __name__ == "__main__":
    globals()[sys.argv[1]](*sys.argv[2:])
