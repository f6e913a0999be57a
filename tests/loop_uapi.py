# SPDX-License-Identifier: GPL-2.0
#
# The loop driver's user API for the Python helpers of the shell tests
# (tests/blktests_loop_helper.py, tests/ltp_loop_helper.py): the ioctl
# numbers and flags of <linux/loop.h> and <linux/fs.h>, and the structures
# packed as the kernel's headers lay them out.

import errno
import os
import struct

# The numbers come from the kernel's headers, as tests/loop_uapi_gen.c
# prints them into build/tests/loop_uapi.sh (NAME=VALUE lines): the ioctls
# (LOOP_SET_FD ... LOOP_CONFIGURE, LOOP_CTL_*, BLKRRPART, BLKSSZGET), the
# LO_FLAGS_* and the sizes and field offsets of the structures used below.
_GENERATED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build", "tests",
                          "loop_uapi.sh")
with open(_GENERATED) as _f:
    for _line in _f:
        _name, _value = _line.strip().split("=", 1)
        globals()[_name] = int(_value, 0)


def ename(e):
    """The name of errno e ("ENXIO"), or its number."""
    return errno.errorcode.get(e, str(e))


def info(offset=0, flags=0, name=b""):
    """A struct loop_info."""
    buf = bytearray(INFO_SIZE)
    struct.pack_into("=i", buf, INFO_OFF_LO_OFFSET, offset)
    struct.pack_into("=I", buf, INFO_OFF_LO_FLAGS, flags)
    buf[INFO_OFF_LO_NAME:INFO_OFF_LO_NAME + len(name)] = name
    return bytes(buf)


def info64(offset=0, sizelimit=0, flags=0):
    """A struct loop_info64."""
    buf = bytearray(INFO64_SIZE)
    struct.pack_into("=Q", buf, INFO64_OFF_LO_OFFSET, offset)
    struct.pack_into("=Q", buf, INFO64_OFF_LO_SIZELIMIT, sizelimit)
    struct.pack_into("=I", buf, INFO64_OFF_LO_FLAGS, flags)
    return bytes(buf)


def loop_config(fd, flags=0, block_size=0, sizelimit=0):
    """A struct loop_config."""
    head = struct.pack("=iI", fd, block_size)
    assert len(head) == CONFIG_OFF_INFO
    tail = bytes(CONFIG_SIZE - CONFIG_OFF_INFO - INFO64_SIZE)
    return head + info64(0, sizelimit, flags) + tail
