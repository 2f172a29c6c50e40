"""A work process: runs one request at a time for its worker, under OS limits.

`python -m labelwise_server.sandbox.child --zygote` is started by the worker's pool
(labelwise_server.sandbox.pool): it imports everything once, then forks a work process for
each fork request, handing it one end of a socketpair and a one-byte shared cancel flag
(a memfd), both sent by the worker over the zygote's socket. A work process limits
itself (RLIMIT_DATA: the memory it may map; RLIMIT_FSIZE 0: it can
create no file data; RLIMIT_CORE 0; no new privileges; SIGKILL when its worker dies),
reports ready, then answers requests until its socket closes. A request past its deadline,
or whose flag the worker raised, stops at the next check of the stop callback; one that
does not (a library call with no such check, an ONNX graph that loops) is killed by the
worker. Errors go back as JSON: the worker maps them to statuses, never unpickles.
"""

import argparse
import contextlib
import ctypes
import gc
import logging
import mmap
import os
import resource
import signal
import socket
import sys
import time
import traceback
from typing import Any

log = logging.getLogger("labelwise_server.sandbox")

PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
# After a call that left this much more resident memory, hand free heap pages back.
TRIM_ABOVE_BYTES = 16 << 20
MEMORY_WORDS = ("bad_alloc", "failed to allocate", "out of memory", "cannot allocate")


def _prctl(option: int, value: int) -> None:
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)


def _trim() -> None:
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def limit_self(memory_bytes: int) -> None:
    """The OS limits of a work process; memory_bytes 0 leaves memory unlimited."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write to a file fails instead of killing
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if memory_bytes > 0:
        resource.setrlimit(resource.RLIMIT_DATA, (memory_bytes, memory_bytes))


def _is_memory_error(err: BaseException) -> bool:
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, MemoryError):
            return True
        if any(word in str(seen).lower() for word in MEMORY_WORDS):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def error_meta(err: BaseException) -> dict[str, Any]:
    """A caught exception as JSON for the worker (labelwise_server.sandbox.pool.raise_error)."""
    from labelwise_server.errors import (
        Cancelled,
        DeadlineExceeded,
        InvalidArgument,
        ModelNotCached,
    )

    if isinstance(err, DeadlineExceeded):
        return {"type": "DeadlineExceeded"}
    if isinstance(err, Cancelled):
        return {"type": "Cancelled"}
    if _is_memory_error(err):
        return {"type": "Memory"}
    if isinstance(err, InvalidArgument):
        return {"type": "InvalidArgument", "field": err.field, "description": err.description,
                "reason": err.reason}  # fmt: skip
    if isinstance(err, ModelNotCached):
        return {"type": "ModelNotCached", "field": err.field, "sha256": err.sha256}
    log.error("unexpected error in a work process:\n%s", "".join(traceback.format_exception(err)))
    return {"type": "Internal"}


class Child:
    def __init__(self, args: argparse.Namespace, fd: int, cancel_fd: int) -> None:
        from labelwise_server.onnx_runner import ModelLimits, ModelStore

        self.sock = socket.socket(fileno=fd)
        self.sock.setblocking(True)
        self.cancel = mmap.mmap(cancel_fd, mmap.PAGESIZE, mmap.MAP_SHARED, mmap.PROT_READ)
        os.close(cancel_fd)
        self.max_elements: int = args.max_elements
        self.max_response_bytes: int = args.max_response_bytes
        self.store = ModelStore(
            ModelLimits(max_bytes=args.max_model_bytes, intra_op_threads=args.inference_threads),
            args.model_cache_bytes,
        )

    def serve(self) -> None:
        from labelwise_server.onnx_runner import resident_bytes
        from labelwise_server.sandbox.protocol import ProtocolError, recv_frame, send_frame

        send_frame(self.sock, {"ready": True, "pid": os.getpid()})
        while True:
            try:
                meta, payload, fds = recv_frame(self.sock)
            except (ProtocolError, OSError):
                return
            before = resident_bytes()
            reply, body = self.handle(meta, payload, fds)
            del payload
            send_frame(self.sock, reply, body)
            del body
            if resident_bytes() > before + TRIM_ABOVE_BYTES:  # a big call: free what it left
                gc.collect()  # cycles holding arrays; the zygote's objects stay frozen
                _trim()

    def handle(
        self, meta: dict[str, Any], payload: bytearray, fds: list[int]
    ) -> tuple[dict[str, Any], bytes]:
        buffer: mmap.mmap | None = None
        try:
            if meta.get("memfd"):
                if len(fds) != 1:
                    raise RuntimeError(f"expected one memfd, got {len(fds)}")
                # MAP_POPULATE: the pages are mapped in one go, not faulted one by one.
                flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
                buffer = mmap.mmap(fds[0], max(1, int(meta["size"])), flags, mmap.PROT_READ)
                view = memoryview(buffer)
            else:
                view = memoryview(payload)
            for fd in fds:
                os.close(fd)
            fds = []
            return self._run(meta, view)
        except BaseException as err:  # every failure goes back as a status
            return {"ok": False, "error": error_meta(err), **self._state()}, b""
        finally:
            for fd in fds:
                os.close(fd)
            if buffer is not None:
                gc.collect()
                with contextlib.suppress(BufferError):
                    buffer.close()

    def _state(self) -> dict[str, Any]:
        return {
            "models": self.store.cache.digests(),
            "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        }

    def _run(self, meta: dict[str, Any], view: memoryview) -> tuple[dict[str, Any], bytes]:
        from labelwise.v1 import query_selection_pb2 as pb
        from labelwise_server.errors import Cancelled, DeadlineExceeded
        from labelwise_server.tensors import RawTensor, WireRequest
        from labelwise_server.work import select_response, stopping_response

        deadline = meta.get("deadline")
        cancel = self.cancel

        def stop() -> None:
            if deadline is not None and time.monotonic() > deadline:
                raise DeadlineExceeded()
            if cancel[0]:
                raise Cancelled()

        start, length = meta["header"]
        header = view[start : start + length]
        if meta["op"] == "stopping":
            stop()
            response: Any = stopping_response(
                pb.CheckStoppingRequest.FromString(bytes(header)), self.max_elements
            )
            return {"ok": True, **self._state()}, response.SerializeToString(deterministic=True)
        tensors = {
            name: RawTensor(dtype, list(shape), view[offset : offset + size])
            for name, dtype, shape, offset, size in meta["tensors"]
        }
        request = WireRequest(pb.SelectQueriesRequest.FromString(bytes(header)), tensors,
                              int(meta["wire_bytes"]))  # fmt: skip
        self.store.provide({sha: bytes(view[o : o + n]) for sha, o, n in meta["provide"]})
        timings: list[tuple[str, float]] = []
        try:
            response, rows = select_response(
                request, self.max_elements, self.store, stop,
                lambda name, seconds: timings.append((name, seconds)),
                self.max_response_bytes,
            )  # fmt: skip
            digests = list(self.store.resolved)
        finally:
            self.store.provide({})
            self.store.cache.settle()
        # Deterministic: map fields (StrategyResult.params) in key order, not in the order of
        # this process's hash table, so every replica answers the same bytes.
        body = response.SerializeToString(deterministic=True)
        return {"ok": True, "rows": rows, "timings": timings, "digests": digests,
                **self._state()}, body  # fmt: skip


def zygote(args: argparse.Namespace) -> None:
    """Fork a work process for each request on the zygote's socket; reply with its pid."""
    from labelwise_server.sandbox.protocol import ProtocolError, recv_frame, send_frame

    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the work processes
    sock = socket.socket(fileno=args.fd)
    sock.setblocking(True)
    gc.collect()
    gc.freeze()  # the imported objects stay shared with every fork
    send_frame(sock, {"ready": True, "pid": os.getpid()})
    while True:
        try:
            meta, _, fds = recv_frame(sock)
        except (ProtocolError, OSError):
            return
        if meta.get("op") != "fork" or len(fds) != 2:
            for fd in fds:
                os.close(fd)
            send_frame(sock, {"error": "expected a fork request with two descriptors"})
            continue
        pid = os.fork()
        if pid == 0:  # the work process
            status = 1
            try:
                sock.close()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                child = Child(args, fds[0], fds[1])
                limit_self(args.memory_bytes)
                child.serve()
                status = 0
            except BaseException:
                log.exception("a work process failed")
            finally:
                os._exit(status)
        for fd in fds:
            os.close(fd)
        send_frame(sock, {"pid": pid})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="labelwise-sandbox")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--cancel-fd", type=int, required=True)
    parser.add_argument("--memory-bytes", type=int, default=0)
    parser.add_argument("--max-elements", type=int, required=True)
    parser.add_argument("--max-model-bytes", type=int, required=True)
    parser.add_argument("--max-response-bytes", type=int, required=True)
    parser.add_argument("--model-cache-bytes", type=int, required=True)
    parser.add_argument("--inference-threads", type=int, default=1)
    parser.add_argument("--zygote", action="store_true")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format=f"%(asctime)s %(levelname)s sandbox-{os.getpid()} %(name)s: %(message)s",
    )
    # The worker decides when this process ends (SIGKILL, or its socket closing), so a
    # SIGTERM or Ctrl-C sent to the whole process group does not end calls in their grace.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import labelwise_server.work  # noqa: F401 - every strategy, before the limits
    from labelwise_server.onnx_runner import import_runtime

    import_runtime()
    if args.zygote:
        zygote(args)
        return 0
    child = Child(args, args.fd, args.cancel_fd)
    limit_self(args.memory_bytes)
    gc.collect()
    _trim()
    child.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
