# SPDX-License-Identifier: GPL-2.0
#
# The Linux Test Project's loop device tests (testcases/kernel/syscalls/
# ioctl/ioctl_loop01.c .. ioctl_loop07.c and ioctl09.c), step by step as
# they run on top of LTP's helpers (lib/tst_device.c: tst_find_free_loopdev
# with LOOP_CTL_GET_FREE, tst_attach_device with LOOP_SET_FD and an old
# LOOP_SET_STATUS naming the file, tst_detach_device_by_fd retrying
# LOOP_CLR_FD until ENXIO), with the same arguments and the same checks, so
# that a driver passing here passes LTP. One TAP line per LTP test; run by
# tests/ltp_loop_test.sh in a scratch directory on ext4 (ioctl_loop05
# skips tmpfs).
#
#   python3 ltp_loop_helper.py SCRATCH_DIR

import errno
import fcntl
import os
import struct
import subprocess
import sys
import time

from loop_uapi import (BLKRRPART, BLKSSZGET, INFO64_SIZE, INFO_SIZE, LO_FLAGS_AUTOCLEAR,
                       LO_FLAGS_DIRECT_IO, LO_FLAGS_PARTSCAN, LO_FLAGS_READ_ONLY,
                       LOOP_CHANGE_FD, LOOP_CLR_FD, LOOP_CONFIGURE, LOOP_CTL_GET_FREE,
                       LOOP_GET_STATUS, LOOP_GET_STATUS64, LOOP_SET_BLOCK_SIZE,
                       LOOP_SET_CAPACITY, LOOP_SET_DIRECT_IO, LOOP_SET_FD, LOOP_SET_STATUS,
                       LOOP_SET_STATUS64, ename, info, info64, loop_config)


class Fail(Exception):
    """A TFAIL of the LTP test: its message."""


class Conf(Exception):
    """A TCONF of the LTP test: its message."""


def get_flags(fd):
    return struct.unpack_from("=I", fcntl.ioctl(fd, LOOP_GET_STATUS, bytes(INFO_SIZE)), 44)[0]


def errno_of(fd, req, arg=0):
    """ioctl(fd, req, arg): 0, or the errno it failed with."""
    try:
        fcntl.ioctl(fd, req, arg)
        return 0
    except OSError as e:
        return e.errno


def want_errno(what, want, got):
    if got != want:
        raise Fail("%s: want %s, got %s" % (what, ename(want) if want else "success",
                                            ename(got) if got else "success"))


def fill_file(path, size):
    with open(path, "wb") as f:
        f.write(bytes(size))


def sysfs_int(dev, attr):
    """TST_ASSERT_INT's read: an integer, or a Fail if there is none."""
    path = "/sys/block/%s/%s" % (os.path.basename(dev), attr)
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError) as e:
        raise Fail("%s: %s" % (path, e))


def assert_int(dev, attr, want):
    got = sysfs_int(dev, attr)
    if got != want:
        raise Fail("/sys/block/%s/%s: want %d, got %d" % (os.path.basename(dev), attr, want, got))


def assert_str(dev, attr, want):
    path = "/sys/block/%s/%s" % (os.path.basename(dev), attr)
    try:
        with open(path) as f:
            got = (f.read().split() or [""])[0]
    except OSError as e:
        raise Fail("%s: %s" % (path, e))
    if got != want:
        raise Fail("%s: want %s, got %s" % (path, want, got))


def find_free():
    """tst_find_free_loopdev(): LOOP_CTL_GET_FREE, /dev/loopN."""
    ctl = os.open("/dev/loop-control", os.O_RDWR)
    try:
        n = fcntl.ioctl(ctl, LOOP_CTL_GET_FREE)
    finally:
        os.close(ctl)
    dev = "/dev/loop%d" % n
    if not os.path.exists(dev):
        raise Fail("LOOP_CTL_GET_FREE gave %d, but %s does not exist" % (n, dev))
    return dev


def attach(dev, file):
    """tst_attach_device(): LOOP_SET_FD, then LOOP_SET_STATUS naming the file."""
    dfd = os.open(dev, os.O_RDWR)
    ffd = os.open(file, os.O_RDWR)
    try:
        fcntl.ioctl(dfd, LOOP_SET_FD, ffd)
        fcntl.ioctl(dfd, LOOP_SET_STATUS, info(name=os.path.basename(file).encode()))
    except OSError as e:
        raise Fail("attaching %s to %s: %s" % (file, dev, ename(e.errno)))
    finally:
        os.close(ffd)
        os.close(dfd)


def detach_by_fd(dfd):
    """tst_detach_device_by_fd(): LOOP_CLR_FD every 50 ms until ENXIO (40 tries)."""
    for _ in range(40):
        e = errno_of(dfd, LOOP_CLR_FD)
        if e == errno.ENXIO:
            return
        if e not in (0, errno.EBUSY):
            raise Fail("LOOP_CLR_FD unexpectedly failed: %s" % ename(e))
        time.sleep(0.05)
    raise Fail("LOOP_CLR_FD: no ENXIO for too long")


def detach(dev):
    dfd = os.open(dev, os.O_RDONLY)
    try:
        detach_by_fd(dfd)
    finally:
        os.close(dfd)


def retry(f, secs=1.0):
    """TST_RETRY_FUNC: f() until it succeeds, for about a second; the last result."""
    deadline, delay = time.monotonic() + secs, 1e-6
    while True:
        e = f()
        if e == 0 or time.monotonic() > deadline:
            return e
        time.sleep(delay)
        delay *= 2


def wait_exists(path, want, secs=30):
    deadline = time.monotonic() + secs
    while os.path.exists(path) != want:
        if time.monotonic() > deadline:
            raise Fail("%s %s after %d s" % (path, "still absent" if want else "still exists", secs))
        time.sleep(0.01)


def partition_table(path, parts):
    """What LTP's parted -s PATH mklabel msdos mkpart primary ext4 ... does: a
    DOS table with the given (start, size) partitions in 512-byte sectors."""
    spec = "label: dos\n" + "".join("start=%d, size=%d, type=83\n" % p for p in parts)
    r = subprocess.run(["sfdisk", "-q", "--no-reread", "--no-tell-kernel", path],
                       input=spec.encode(), capture_output=True)
    if r.returncode:
        raise Fail("sfdisk %s: %s" % (path, r.stderr.decode().strip()))


def configure_supported(dfd):
    """LTP's probe: LOOP_CONFIGURE with fd -1 fails with EBADF if supported."""
    return errno_of(dfd, LOOP_CONFIGURE, loop_config(-1)) == errno.EBADF


# ---------------------------------------------------------------- the tests

def ioctl_loop01(dev, tmp):
    img = os.path.join(tmp, "test.img")
    fill_file(img, 10 * 1024 * 1024)
    attach(dev, img)
    name = os.path.basename(dev)
    partition_table(dev, [(2048, 17483)])
    dfd = os.open(dev, os.O_RDWR)
    try:
        assert_int(dev, "loop/partscan", 0)
        assert_int(dev, "loop/autoclear", 0)
        assert_str(dev, "loop/backing_file", img)
        for set_flags, get_flags_mask, autoclear in (
                (LO_FLAGS_AUTOCLEAR | LO_FLAGS_PARTSCAN | LO_FLAGS_READ_ONLY | LO_FLAGS_DIRECT_IO,
                 LO_FLAGS_AUTOCLEAR | LO_FLAGS_PARTSCAN, 1),
                (0, LO_FLAGS_PARTSCAN, 0)):
            fcntl.ioctl(dfd, LOOP_SET_STATUS, info(flags=set_flags))
            got = get_flags(dfd)
            if got & ~get_flags_mask:
                raise Fail("LOOP_SET_STATUS lo_flags %#x: LOOP_GET_STATUS gives %#x, "
                           "beyond %#x" % (set_flags, got, get_flags_mask))
            assert_int(dev, "loop/partscan", 1)
            assert_int(dev, "loop/autoclear", autoclear)
            wait_exists("/dev/%sp1" % name, True)
            wait_exists("/sys/block/%s/%sp1" % (name, name), True)
        detach_by_fd(dfd)
    finally:
        os.close(dfd)


def ioctl_loop02(dev, tmp):
    imgs = [os.path.join(tmp, n) for n in ("test.img", "test1.img", "test2.img")]
    for path, size in zip(imgs, (10240, 10240, 40960)):
        fill_file(path, size)
    dfd = os.open(dev, os.O_RDWR)
    try:
        cases = [("LOOP_SET_FD", os.O_RDONLY)]
        if configure_supported(dfd):
            cases.append(("LOOP_CONFIGURE", os.O_RDWR))
        for how, mode in cases:
            ffd = os.open(imgs[0], mode)
            try:
                if how == "LOOP_SET_FD":
                    fcntl.ioctl(dfd, LOOP_SET_FD, ffd)
                else:
                    fcntl.ioctl(dfd, LOOP_CONFIGURE, loop_config(ffd, flags=LO_FLAGS_READ_ONLY))
            finally:
                os.close(ffd)
            assert_int(dev, "ro", 1)
            assert_str(dev, "loop/backing_file", imgs[0])
            got = get_flags(dfd)
            if got & ~LO_FLAGS_READ_ONLY:
                raise Fail("%s: lo_flags %#x beyond LO_FLAGS_READ_ONLY" % (how, got))
            try:
                os.write(dfd, b"xx")
                raise Fail("%s: a write to the read-only device succeeded" % how)
            except OSError:
                pass
            f1 = os.open(imgs[1], os.O_RDWR)
            try:
                want_errno(how + ": LOOP_CHANGE_FD to a file of the same size", 0,
                           errno_of(dfd, LOOP_CHANGE_FD, f1))
            finally:
                os.close(f1)
            assert_int(dev, "ro", 1)
            assert_str(dev, "loop/backing_file", imgs[1])
            f2 = os.open(imgs[2], os.O_RDWR)
            try:
                want_errno(how + ": LOOP_CHANGE_FD to a file of another size", errno.EINVAL,
                           errno_of(dfd, LOOP_CHANGE_FD, f2))
            finally:
                os.close(f2)
            detach_by_fd(dfd)
            os.close(dfd)
            dfd = os.open(dev, os.O_RDWR)
    finally:
        os.close(dfd)


def ioctl_loop03(dev, tmp):
    img = os.path.join(tmp, "test.img")
    fill_file(img, 10240)
    attach(dev, img)
    dfd = os.open(dev, os.O_RDWR)
    ffd = os.open(img, os.O_RDWR)
    try:
        if get_flags(dfd) & LO_FLAGS_READ_ONLY:
            raise Conf("device is read-only")
        want_errno("LOOP_CHANGE_FD on a writable device", errno.EINVAL,
                   errno_of(dfd, LOOP_CHANGE_FD, ffd))
        detach_by_fd(dfd)
    finally:
        os.close(ffd)
        os.close(dfd)


def ioctl_loop04(dev, tmp):
    img = os.path.join(tmp, "test.img")
    dfd = os.open(dev, os.O_RDWR)
    try:
        fill_file(img, 10240)
        attach(dev, img)
        assert_int(dev, "size", 20)
        if get_flags(dfd) & LO_FLAGS_READ_ONLY:
            raise Conf("device is read-only")
        os.truncate(img, 5120)
        want_errno("LOOP_SET_CAPACITY", 0, errno_of(dfd, LOOP_SET_CAPACITY))
        os.lseek(dfd, 0, os.SEEK_SET)
        n = os.write(dfd, b"x" * 10240)
        if n != 5120:
            raise Fail("write of 10240 bytes after LOOP_SET_CAPACITY wrote %d, want 5120" % n)
        assert_int(dev, "size", 10)
        detach_by_fd(dfd)
    finally:
        os.close(dfd)
        os.unlink(img)


def backing_lbs(path):
    """tst_find_backing_dev() and BLKSSZGET: the logical block size of the
    block device under the file system holding path."""
    st = os.stat(path)
    with open("/sys/dev/block/%d:%d/uevent" % (os.major(st.st_dev), os.minor(st.st_dev))) as f:
        name = [l.split("=", 1)[1].strip() for l in f if l.startswith("DEVNAME=")][0]
    fd = os.open("/dev/" + name, os.O_RDONLY)
    try:
        return struct.unpack("=i", fcntl.ioctl(fd, BLKSSZGET, bytes(4)))[0]
    finally:
        os.close(fd)


def ioctl_loop05(dev, tmp):
    img = os.path.join(tmp, "test.img")
    fill_file(img, 1024 * 1024)
    attach(dev, img)
    dfd = os.open(dev, os.O_RDWR)
    try:
        if errno_of(dfd, LOOP_SET_DIRECT_IO, 0) == errno.EINVAL:
            raise Conf("LOOP_SET_DIRECT_IO does not exist")
        lbs = backing_lbs(img)
        if lbs > 512:
            retry(lambda: errno_of(dfd, LOOP_SET_BLOCK_SIZE, lbs))
        retry(lambda: errno_of(dfd, LOOP_SET_STATUS, info()))

        def dio(on, what):
            want_errno(what + ": LOOP_SET_DIRECT_IO %d" % on, 0,
                       errno_of(dfd, LOOP_SET_DIRECT_IO, on))
            if bool(get_flags(dfd) & LO_FLAGS_DIRECT_IO) != bool(on):
                raise Fail("%s: LO_FLAGS_DIRECT_IO %s after LOOP_SET_DIRECT_IO %d"
                           % (what, "absent" if on else "present", on))
            assert_int(dev, "loop/dio", on)

        dio(1, "offset 0")
        dio(0, "offset 0")
        fcntl.ioctl(dfd, LOOP_SET_STATUS, info(offset=lbs))
        dio(1, "offset %d" % lbs)
        dio(0, "offset %d" % lbs)
        fcntl.ioctl(dfd, LOOP_SET_STATUS, info(offset=lbs // 2))
        e = errno_of(dfd, LOOP_SET_DIRECT_IO, 1)
        if e not in (0, errno.EINVAL):
            raise Fail("offset %d: LOOP_SET_DIRECT_IO 1 failed with %s, want success "
                       "or EINVAL" % (lbs // 2, ename(e)))
        if e == 0:
            fcntl.ioctl(dfd, LOOP_SET_DIRECT_IO, 0)
        detach_by_fd(dfd)
    finally:
        os.close(dfd)


def ioctl_loop06(dev, tmp):
    img = os.path.join(tmp, "test.img")
    fill_file(img, 1024 * 1024)
    bad = (256, 65536 * 2, os.sysconf("SC_PAGE_SIZE") - 1)
    dfd = os.open(dev, os.O_RDWR)
    ffd = os.open(img, os.O_RDWR)
    try:
        if errno_of(dfd, LOOP_SET_BLOCK_SIZE, 512) in (errno.EINVAL, errno.ENOTTY):
            raise Conf("LOOP_SET_BLOCK_SIZE does not exist")
        configure = configure_supported(dfd)
        attach(dev, img)
        for bs in bad:
            want_errno("LOOP_SET_BLOCK_SIZE %d" % bs, errno.EINVAL,
                       errno_of(dfd, LOOP_SET_BLOCK_SIZE, bs))
        detach_by_fd(dfd)
        os.close(dfd)
        dfd = os.open(dev, os.O_RDWR)
        if configure:
            for bs in bad:
                e = errno_of(dfd, LOOP_CONFIGURE, loop_config(ffd, block_size=bs))
                if e == 0:
                    detach_by_fd(dfd)
                want_errno("LOOP_CONFIGURE block_size %d" % bs, errno.EINVAL, e)
    finally:
        os.close(ffd)
        os.close(dfd)


def ioctl_loop07(dev, tmp):
    img = os.path.join(tmp, "test.img")
    fill_file(img, 1024 * 1024)
    attach(dev, img)
    detach(dev)
    ffd = os.open(img, os.O_RDWR)
    dfd = os.open(dev, os.O_RDWR)
    try:
        configure = configure_supported(dfd)
        attach(dev, img)
        for how in ("LOOP_SET_STATUS64", "LOOP_CONFIGURE"):
            if how == "LOOP_CONFIGURE" and not configure:
                continue
            for limit, size in ((4194304, 2048), (524288, 1024)):
                if how == "LOOP_SET_STATUS64":
                    want_errno("LOOP_SET_STATUS64 lo_sizelimit %d" % limit, 0,
                               retry(lambda: errno_of(dfd, LOOP_SET_STATUS64,
                                                      info64(sizelimit=limit))))
                else:
                    detach_by_fd(dfd)
                    os.close(dfd)
                    dfd = os.open(dev, os.O_RDWR)
                    want_errno("LOOP_CONFIGURE lo_sizelimit %d" % limit, 0,
                               errno_of(dfd, LOOP_CONFIGURE, loop_config(ffd, sizelimit=limit)))
                assert_int(dev, "size", size)
                assert_int(dev, "loop/sizelimit", limit)
                got = struct.unpack_from("=Q", fcntl.ioctl(dfd, LOOP_GET_STATUS64,
                                                           bytes(INFO64_SIZE)), 32)[0]
                if got != limit:
                    raise Fail("%s: LOOP_GET_STATUS64 lo_sizelimit %d, want %d" % (how, got, limit))
                if how == "LOOP_SET_STATUS64":
                    # LTP resets with the old LOOP_SET_STATUS on a zeroed
                    # loop_info64; its result is ignored.
                    retry(lambda: errno_of(dfd, LOOP_SET_STATUS, bytes(INFO64_SIZE)[:INFO_SIZE]))
        detach_by_fd(dfd)
    finally:
        os.close(ffd)
        os.close(dfd)


def ioctl09(dev, tmp):
    img = os.path.join(tmp, "test.img")
    with open(img, "wb") as f:
        os.posix_fallocate(f.fileno(), 0, 20 * 1024 * 1024)
    name = os.path.basename(dev)
    dfd = os.open(dev, os.O_RDWR)
    try:
        partition_table(img, [(2048, 17483)])
        attach(dev, img)
        fcntl.ioctl(dfd, LOOP_SET_STATUS, info(flags=LO_FLAGS_PARTSCAN))
        wait_exists("/sys/block/%s/%sp1" % (name, name), True)
        wait_exists("/dev/%sp1" % name, True)
        wait_exists("/sys/block/%s/%sp2" % (name, name), False)
        wait_exists("/dev/%sp2" % name, False)
        # The older LTP writes the new table into the backing file while
        # it is attached, the newer one through the device: both.
        for target in (img, dev):
            partition_table(target, [(2048, 17483), (19531, 19531)])
            retry(lambda: errno_of(dfd, BLKRRPART))
            for p in (1, 2):
                wait_exists("/sys/block/%s/%sp%d" % (name, name, p), True)
                wait_exists("/dev/%sp%d" % (name, p), True)
            partition_table(target, [(2048, 17483)])
            retry(lambda: errno_of(dfd, BLKRRPART))
            wait_exists("/sys/block/%s/%sp2" % (name, name), False)
        detach_by_fd(dfd)
    finally:
        os.close(dfd)


TESTS = [
    ("ioctl_loop01", "LO_FLAGS_AUTOCLEAR and LO_FLAGS_PARTSCAN by LOOP_SET_STATUS; "
     "READ_ONLY and DIRECT_IO not settable; partitions appear"),
    ("ioctl_loop02", "read-only by LOOP_SET_FD and LOOP_CONFIGURE; LOOP_CHANGE_FD "
     "same size ok, other size EINVAL"),
    ("ioctl_loop03", "LOOP_CHANGE_FD on a writable device is EINVAL"),
    ("ioctl_loop04", "LOOP_SET_CAPACITY after truncating the file: short write, new size"),
    ("ioctl_loop05", "LOOP_SET_DIRECT_IO on and off, with an aligned and a misaligned offset"),
    ("ioctl_loop06", "LOOP_SET_BLOCK_SIZE and LOOP_CONFIGURE with block sizes 256, "
     "128 KiB and PAGE_SIZE-1 are EINVAL"),
    ("ioctl_loop07", "lo_sizelimit by LOOP_SET_STATUS64 and LOOP_CONFIGURE: size, sysfs, "
     "LOOP_GET_STATUS64"),
    ("ioctl09", "BLKRRPART re-reads a partition table rewritten in the file and through the device"),
]


def main():
    scratch = sys.argv[1]
    failed = 0
    for name, desc in TESTS:
        tmp = os.path.join(scratch, name)
        os.makedirs(tmp, exist_ok=True)
        dev = None
        t0 = time.monotonic()
        try:
            dev = find_free()
            globals()[name](dev, tmp)
            print("ok - %s: %s" % (name, desc))
        except Conf as e:
            print("ok - %s: %s # SKIP %s" % (name, desc, e))
        except (Fail, OSError) as e:
            print("# %s on %s: %s" % (name, dev, e))
            print("not ok - %s: %s" % (name, desc))
            failed = 1
            # LTP's cleanup: detach whatever is left.
            if dev:
                try:
                    detach(dev)
                except (Fail, OSError):
                    pass
        print("# %s: %.1f s" % (name, time.monotonic() - t0))
        sys.stdout.flush()
        subprocess.run(["rm", "-rf", tmp])
    return failed


if __name__ == "__main__":
    sys.exit(main())
