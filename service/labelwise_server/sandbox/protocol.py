"""The frames between a worker and its work processes: JSON metadata and raw bytes.

A frame is two little-endian uint32 lengths (metadata, payload), the metadata as UTF-8
JSON, then the payload. A worker's request may instead carry its payload in a memfd sent
with the frame's first bytes (SCM_RIGHTS): the work process maps it read-only, so a large
pool crosses the process boundary with one copy and no file name. Nothing here unpickles:
a work process runs hostile models, and what it sends back is parsed as JSON and bytes only.
"""

import json
import os
import socket
import struct
from typing import Any

HEAD = struct.Struct("<II")
# Payloads this large or larger go through a memfd instead of the socket.
MEMFD_MIN_BYTES = 1 << 20
# A reply's metadata is small (an error, timings, model digests); anything larger is a fault.
MAX_META_BYTES = 1 << 20
WRITE_BYTES = 64 << 20  # per write(2) call into a memfd


class ProtocolError(Exception):
    """The other side sent something that is not a frame, or went away mid-frame."""


def encode_head(meta: dict[str, Any], payload_bytes: int) -> bytes:
    text = json.dumps(meta, separators=(",", ":")).encode()
    return HEAD.pack(len(text), payload_bytes) + text


def decode_meta(data: bytes) -> dict[str, Any]:
    try:
        meta = json.loads(data)
    except ValueError as err:
        raise ProtocolError(f"metadata is not JSON: {err}") from None
    if not isinstance(meta, dict):
        raise ProtocolError("metadata is not an object")
    return meta


def payload_memfd(parts: list[memoryview | bytes], size: int) -> int:
    """A memfd holding the parts back to back; the caller closes it. Written with write(2)
    (half the time of copying into a mapping, which faults page by page)."""
    fd = os.memfd_create("labelwise-request", os.MFD_CLOEXEC)
    try:
        for part in parts:
            view = memoryview(part).cast("B")
            offset = 0
            while offset < len(view):
                offset += os.write(fd, view[offset : offset + WRITE_BYTES])
    except BaseException:
        os.close(fd)
        raise
    return fd


def recv_exact(sock: socket.socket, n: int) -> bytearray:
    """n bytes from a blocking socket (ProtocolError if it closes first)."""
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            raise ProtocolError("the other side closed the connection")
        got += k
    return buf


def recv_frame(sock: socket.socket) -> tuple[dict[str, Any], bytearray, list[int]]:
    """One frame from a blocking socket, with the file descriptors sent along with it."""
    first, fds, _flags, _addr = socket.recv_fds(sock, HEAD.size, 4)
    if not first:
        for fd in fds:
            os.close(fd)
        raise ProtocolError("the other side closed the connection")
    head = bytearray(first)
    if len(head) < HEAD.size:
        head += recv_exact(sock, HEAD.size - len(head))
    meta_bytes, payload_bytes = HEAD.unpack(head)
    if meta_bytes > MAX_META_BYTES:
        raise ProtocolError(f"metadata of {meta_bytes} bytes")
    meta = decode_meta(bytes(recv_exact(sock, meta_bytes)))
    payload = recv_exact(sock, payload_bytes) if payload_bytes else bytearray()
    return meta, payload, list(fds)


def send_frame(
    sock: socket.socket, meta: dict[str, Any], payload: bytes | memoryview = b""
) -> None:
    """One frame on a blocking socket."""
    sock.sendall(encode_head(meta, len(payload)))
    if len(payload):
        sock.sendall(payload)
