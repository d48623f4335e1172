"""Reading many datagrams of a socket in one system call: ``recvmmsg(2)`` through ctypes.

The kernel tells route changes one datagram each: a feed of a million
routes is a million datagrams, and read one ``recv`` at a time the system
calls alone cost the sync some 2 us a route.  :class:`BatchReader` reads up
to :data:`BATCH` of them at once into a buffer of its own.

Where the C library has no ``recvmmsg`` (it is Linux's), :func:`reader`
returns None and the caller reads a datagram at a time.
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket

BATCH = 32
"""Datagrams read at most by one call (each up to the reader's size: 1 MiB of buffer for
netlink's 32 KiB)."""


class _Iovec(ctypes.Structure):
    _fields_ = (("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t))


class _Msghdr(ctypes.Structure):
    _fields_ = (
        ("msg_name", ctypes.c_void_p),
        ("msg_namelen", ctypes.c_uint32),
        ("msg_iov", ctypes.POINTER(_Iovec)),
        ("msg_iovlen", ctypes.c_size_t),
        ("msg_control", ctypes.c_void_p),
        ("msg_controllen", ctypes.c_size_t),
        ("msg_flags", ctypes.c_int),
    )


class _Mmsghdr(ctypes.Structure):
    _fields_ = (("msg_hdr", _Msghdr), ("msg_len", ctypes.c_uint))


def _recvmmsg() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    try:
        function = ctypes.CDLL(None, use_errno=True).recvmmsg
    except (OSError, AttributeError):
        return None
    function.argtypes = (ctypes.c_int, ctypes.POINTER(_Mmsghdr), ctypes.c_uint, ctypes.c_int,
                         ctypes.c_void_p)  # fmt: skip
    function.restype = ctypes.c_int
    return function


class BatchReader:
    """Reads the datagrams waiting on one socket, up to :data:`BATCH` a call, each of up to
    ``size`` bytes (a longer one is cut, as ``recv(size)`` cuts it)."""

    def __init__(self, sock: socket.socket, size: int, call: ctypes._CFuncPtr) -> None:  # type: ignore[name-defined]
        self._sock = sock
        self._size = size
        self._call = call
        self._buffer = ctypes.create_string_buffer(BATCH * size)
        self._view = memoryview(self._buffer).cast("B")
        self._words = self._view.cast("I")
        """The buffer as unsigned ints: a datagram's first is its first message's length."""
        self._iovecs = (_Iovec * BATCH)()
        self._headers = (_Mmsghdr * BATCH)()
        base = ctypes.addressof(self._buffer)
        for at in range(BATCH):
            self._iovecs[at].iov_base = base + at * size
            self._iovecs[at].iov_len = size
            header = self._headers[at].msg_hdr
            header.msg_iov = ctypes.pointer(self._iovecs[at])
            header.msg_iovlen = 1
        stride, offset = ctypes.sizeof(_Mmsghdr), _Mmsghdr.msg_len.offset
        assert stride % 4 == 0 and offset % 4 == 0
        # Every header's msg_len, as unsigned ints read in one go.
        self._lengths = memoryview(self._headers).cast("B").cast("I")[offset // 4 :: stride // 4]

    def read(self) -> tuple[list[bytes | memoryview], int]:
        """Return the datagrams waiting, those of one message each (notifications) joined,
        and how many datagrams there were (up to :data:`BATCH`: fewer, and the socket
        was drained): each item holds whole messages, and a view is valid until the
        next read.  Raise OSError as ``recv`` would (BlockingIOError when there is none).

        A datagram of several messages (a dump's) or whose message does not fill it
        exactly (cut, or malformed) is an item of its own: decoded alone, it cannot
        take its neighbours with it.
        """
        count = self._call(self._sock.fileno(), self._headers, BATCH, socket.MSG_DONTWAIT, None)
        if count < 0:
            code = ctypes.get_errno()
            if code in (errno.EAGAIN, errno.EWOULDBLOCK):
                raise BlockingIOError(code, os.strerror(code))
            raise OSError(code, os.strerror(code))
        size, view, words, step = self._size, self._view, self._words, self._size // 4
        items: list[bytes | memoryview] = []
        run: list[memoryview] = []
        for at, length in enumerate(self._lengths[:count].tolist()):
            datagram = view[at * size : at * size + length]
            if words[at * step] == length and not length & 3:  # nlmsg_len: one message
                run.append(datagram)
                continue
            if run:
                items.append(b"".join(run))
                run = []
            items.append(datagram)
        if run:
            items.append(b"".join(run) if len(run) > 1 else run[0])
        return items, count


def reader(sock: socket.socket, size: int) -> BatchReader | None:
    """Return a batch reader of ``sock``'s datagrams, or None where there is no ``recvmmsg``."""
    call = _recvmmsg()
    return None if call is None else BatchReader(sock, size, call)
