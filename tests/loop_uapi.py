# SPDX-License-Identifier: GPL-2.0
#
# The loop driver's user API for the Python helpers of the shell tests
# (tests/blktests_loop_helper.py, tests/ltp_loop_helper.py): the ioctl
# numbers and flags of <linux/loop.h> and <linux/fs.h>, and the structures
# packed as x86-64 lays them out.

import errno
import struct

LOOP_SET_FD = 0x4C00
LOOP_CLR_FD = 0x4C01
LOOP_SET_STATUS = 0x4C02
LOOP_GET_STATUS = 0x4C03
LOOP_SET_STATUS64 = 0x4C04
LOOP_GET_STATUS64 = 0x4C05
LOOP_CHANGE_FD = 0x4C06
LOOP_SET_CAPACITY = 0x4C07
LOOP_SET_DIRECT_IO = 0x4C08
LOOP_SET_BLOCK_SIZE = 0x4C09
LOOP_CONFIGURE = 0x4C0A
LOOP_CTL_GET_FREE = 0x4C82
BLKRRPART = 0x125F
BLKSSZGET = 0x1268

LO_FLAGS_READ_ONLY = 1
LO_FLAGS_AUTOCLEAR = 4
LO_FLAGS_PARTSCAN = 8
LO_FLAGS_DIRECT_IO = 16

# struct loop_info: 168 bytes, lo_offset at 32, lo_flags at 44, lo_name at
# 48. struct loop_info64: 232 bytes, lo_offset at 24, lo_sizelimit at 32,
# lo_flags at 52. struct loop_config: fd, block_size, loop_info64, 64
# reserved bytes.
INFO_SIZE = 168
INFO64_SIZE = 232
CONFIG_SIZE = 8 + INFO64_SIZE + 64


def ename(e):
    """The name of errno e ("ENXIO"), or its number."""
    return errno.errorcode.get(e, str(e))


def info(offset=0, flags=0, name=b""):
    """A struct loop_info."""
    buf = bytearray(INFO_SIZE)
    struct.pack_into("=i", buf, 32, offset)
    struct.pack_into("=I", buf, 44, flags)
    buf[48:48 + len(name)] = name
    return bytes(buf)


def info64(offset=0, sizelimit=0, flags=0):
    """A struct loop_info64."""
    buf = bytearray(INFO64_SIZE)
    struct.pack_into("=QQ", buf, 24, offset, sizelimit)
    struct.pack_into("=I", buf, 52, flags)
    return bytes(buf)


def loop_config(fd, flags=0, block_size=0, sizelimit=0):
    """A struct loop_config."""
    return struct.pack("=iI", fd, block_size) + info64(0, sizelimit, flags) + bytes(64)
