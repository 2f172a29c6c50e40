"""A worker's work processes: each request's work runs in one, and is killed when its time is up.

Every SelectQueries, SelectQueriesStream and CheckStopping call of a worker runs in a work
process of this pool (labelwise_server.sandbox.child): the pool sends it the request (small
ones through the socket, large ones in a memfd it maps read-only), waits for the answer
until the call's deadline or cancellation, then raises the process's cancel flag and gives it
`stop_grace` seconds to stop at its next check; a process still busy then is killed
(SIGKILL) and replaced. So no request can hold a core or a slot after its time, whatever it
runs (an ONNX Loop, a k-means without a stop check, a BLAS call), and a request that maps
more memory than `--work-memory-bytes` fails alone (RESOURCE_EXHAUSTED) without touching the
worker. A process that dies (a crash, the kernel's OOM killer) is replaced at once, found
through its pidfd even while idle; health reports NOT_SERVING while the pool has no live
process and cannot start one.

Model bytes: the worker keeps the models callers sent, by SHA-256, bounded by
`--model-cache-bytes` (least recently used out first), and that cache alone decides whether
a hash is known: a hash it holds never answers MODEL_NOT_CACHED, one it evicted always
does, whichever process runs the call. Each process keeps the sessions it made, bounded by
their measured memory, only to save loading them again; a model sent by hash is given to
the process that runs the call if that process lacks it.
"""

import asyncio
import contextlib
import logging
import mmap
import os
import signal
import socket
import subprocess
import sys
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from labelwise.v1 import query_selection_pb2 as pb
from labelwise_server import reasons
from labelwise_server.errors import (
    Cancelled,
    DeadlineExceeded,
    InvalidArgument,
    ModelNotCached,
    WorkFailed,
)
from labelwise_server.sandbox.protocol import (
    HEAD,
    MAX_META_BYTES,
    MEMFD_MIN_BYTES,
    ProtocolError,
    decode_meta,
    encode_head,
    payload_memfd,
)
from labelwise_server.tensors import WireRequest

log = logging.getLogger(__name__)
RESTART_BACKOFF_MAX = 10.0


@dataclass(frozen=True)
class PoolSettings:
    processes: int
    memory_bytes: int  # RLIMIT_DATA of each process (0: none)
    max_elements: int
    max_model_bytes: int
    model_cache_bytes: int
    max_response_bytes: int
    inference_threads: int = 1
    stop_grace: float = 0.25  # seconds a process may take to stop by itself before the kill
    start_timeout: float = 60.0
    log_level: str = "INFO"


@dataclass
class Reply:
    """A work process's answer: the encoded response and what the worker records."""

    body: bytes
    rows: int = 0
    timings: list[tuple[str, float]] = field(default_factory=list)
    digests: list[str] = field(default_factory=list)
    peak_rss: int = 0


def raise_error(error: Any) -> None:
    """Raise the core exception a work process reported (JSON, see child.error_meta)."""
    kind = error.get("type") if isinstance(error, dict) else None
    if kind == "DeadlineExceeded":
        raise DeadlineExceeded()
    if kind == "Cancelled":
        raise Cancelled()
    if kind == "Memory":
        raise WorkFailed(
            reasons.WORK_MEMORY_EXCEEDED,
            "the request needs more memory than one work process may use "
            "(--work-memory-bytes); send a smaller pool, fewer models or a smaller k",
        )
    if kind == "InvalidArgument":
        raise InvalidArgument(str(error["field"]), str(error["description"]),
                              str(error["reason"]))  # fmt: skip
    if kind == "ModelNotCached":
        raise ModelNotCached(str(error["field"]), str(error["sha256"]))
    raise RuntimeError("a work process failed; see its log above")


class ModelBytes:
    """Model bytes by SHA-256, least recently used out first, at most max_bytes in all."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._models: OrderedDict[str, bytes] = OrderedDict()
        self.nbytes = 0

    def get(self, sha256: str) -> bytes | None:
        data = self._models.get(sha256)
        if data is not None:
            self._models.move_to_end(sha256)
        return data

    def put(self, sha256: str, data: bytes) -> None:
        if sha256 in self._models or len(data) > self.max_bytes:
            return
        self._models[sha256] = data
        self.nbytes += len(data)
        while self.nbytes > self.max_bytes:
            _, evicted = self._models.popitem(last=False)
            self.nbytes -= len(evicted)


async def _recv_exact(sock: socket.socket, n: int) -> bytearray:
    loop = asyncio.get_running_loop()
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = await loop.sock_recv_into(sock, view[got:])
        if k == 0:
            raise ProtocolError("the work process closed its socket")
        got += k
    return buf


async def recv_frame(sock: socket.socket) -> tuple[dict[str, Any], bytearray]:
    """One frame from a non-blocking socket, on the running event loop."""
    meta_bytes, payload_bytes = HEAD.unpack(await _recv_exact(sock, HEAD.size))
    if meta_bytes > MAX_META_BYTES:
        raise ProtocolError(f"metadata of {meta_bytes} bytes")
    meta = decode_meta(bytes(await _recv_exact(sock, meta_bytes)))
    payload = await _recv_exact(sock, payload_bytes) if payload_bytes else bytearray()
    return meta, payload


class WorkProcess:
    """One work process (forked by the zygote) and the worker's end of its socket.

    The zygote reaps it; the worker watches it through a pidfd, which also makes the kill
    safe against pid reuse."""

    def __init__(self, pid: int, sock: socket.socket, cancel: mmap.mmap) -> None:
        self.pid = pid
        self.sock = sock
        self.sock.setblocking(False)
        self.cancel = cancel
        self.models: set[str] = set()
        self.dead = False
        self.pidfd = -1
        with contextlib.suppress(OSError):
            self.pidfd = os.pidfd_open(pid)

    async def recv_frame(self) -> tuple[dict[str, Any], bytearray]:
        return await recv_frame(self.sock)

    async def send(self, meta: dict[str, Any], parts: list[Any], size: int) -> None:
        loop = asyncio.get_running_loop()
        if size >= MEMFD_MIN_BYTES:  # written off the event loop: other calls go on
            fd = await loop.run_in_executor(None, payload_memfd, parts, size)
            try:
                head = encode_head({**meta, "memfd": True, "size": size}, 0)
                sent = socket.send_fds(self.sock, [head], [fd])
            finally:
                os.close(fd)
            if sent < len(head):
                await loop.sock_sendall(self.sock, head[sent:])
            return
        await loop.sock_sendall(self.sock, encode_head(meta, size))
        for part in parts:
            await loop.sock_sendall(self.sock, part)

    def kill(self) -> None:
        self.dead = True
        with contextlib.suppress(ProcessLookupError, OSError):
            if self.pidfd >= 0:
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            else:
                os.kill(self.pid, signal.SIGKILL)

    @property
    def running(self) -> bool:
        """Not yet ended (a pidfd turns readable when its process ends)."""
        if self.pidfd < 0:
            return True
        import select

        return not select.select([self.pidfd], [], [], 0)[0]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
        if self.pidfd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.pidfd)
            self.pidfd = -1
        with contextlib.suppress(BufferError, ValueError):
            self.cancel.close()


class Zygote:
    """A process that has imported everything a work process needs and forks new ones.

    A fresh interpreter spends over a second of CPU on its imports (NumPy, SciPy,
    scikit-learn, ONNX Runtime); a fork of the zygote is ready in milliseconds and shares
    those pages. So a work process killed at its deadline is replaced at once, without a
    second of CPU on a busy machine. The zygote runs no request: it only forks."""

    def __init__(self, settings: PoolSettings) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        command = [
            sys.executable, "-m", "labelwise_server.sandbox.child", "--zygote",
            "--fd", str(child.fileno()), "--cancel-fd", "-1",
            "--memory-bytes", str(settings.memory_bytes),
            "--max-elements", str(settings.max_elements),
            "--max-model-bytes", str(settings.max_model_bytes),
            "--max-response-bytes", str(settings.max_response_bytes),
            "--model-cache-bytes", str(settings.model_cache_bytes),
            "--inference-threads", str(settings.inference_threads),
            "--log-level", settings.log_level,
        ]  # fmt: skip
        try:
            self.process = subprocess.Popen(command, pass_fds=(child.fileno(),),
                                            stdin=subprocess.DEVNULL, close_fds=True)  # fmt: skip
        finally:
            child.close()
        self.sock = parent
        self.sock.setblocking(False)
        self.lock = asyncio.Lock()

    async def ready(self, timeout: float) -> None:
        meta, _ = await asyncio.wait_for(recv_frame(self.sock), timeout)
        if not meta.get("ready"):
            raise ProtocolError("the zygote did not report ready")

    async def fork(self) -> WorkProcess:
        """A new work process (not yet known to be ready: it says so on its socket)."""
        async with self.lock:
            parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            cancel_fd = os.memfd_create("labelwise-cancel", os.MFD_CLOEXEC)
            try:
                os.ftruncate(cancel_fd, mmap.PAGESIZE)
                cancel = mmap.mmap(cancel_fd, mmap.PAGESIZE, mmap.MAP_SHARED,
                                   mmap.PROT_READ | mmap.PROT_WRITE)  # fmt: skip
                head = encode_head({"op": "fork"}, 0)
                sent = socket.send_fds(self.sock, [head], [child.fileno(), cancel_fd])
                if sent < len(head):
                    await asyncio.get_running_loop().sock_sendall(self.sock, head[sent:])
            except BaseException:
                parent.close()
                raise
            finally:
                child.close()
                os.close(cancel_fd)
            try:
                meta, _ = await recv_frame(self.sock)
                return WorkProcess(int(meta["pid"]), parent, cancel)
            except BaseException:
                parent.close()
                raise

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        with contextlib.suppress(OSError):
            self.sock.close()


class WorkPool:
    """The work processes of one worker (see the module's doc)."""

    def __init__(
        self,
        settings: PoolSettings,
        on_health: Callable[[bool], None] = lambda serving: None,
        model_bytes: ModelBytes | None = None,
        observe_lookup: Callable[[str, bool, int], None] = lambda source, hit, size: None,
    ) -> None:
        self.settings = settings
        self.models = model_bytes or ModelBytes(settings.model_cache_bytes)
        self._on_health = on_health
        self._observe_lookup = observe_lookup
        self._idle: deque[WorkProcess] = deque()
        self._all: set[WorkProcess] = set()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._failures = 0
        self._closed = False
        self._serving = False
        self._zygote: Zygote | None = None
        self.kills = 0
        self.deaths = 0

    # ---- life cycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Start every process and wait until each is ready (RuntimeError if one is not)."""
        try:
            await self._new_zygote()
        except BaseException:
            await self.close()
            raise
        started = await asyncio.gather(
            *(self._start_one() for _ in range(self.settings.processes)), return_exceptions=True
        )
        failed = [s for s in started if isinstance(s, BaseException)]
        if failed:
            await self.close()
            raise RuntimeError(f"a work process did not start: {failed[0]}")
        self._set_health()

    async def _new_zygote(self) -> Zygote:
        if self._zygote is not None:
            self._zygote.kill()
        self._zygote = Zygote(self.settings)
        await self._zygote.ready(self.settings.start_timeout)
        return self._zygote

    async def _fork(self) -> WorkProcess:
        """A work process from the zygote; a zygote that died is started again once."""
        zygote = self._zygote
        if zygote is None:
            raise RuntimeError("the server is stopping")
        try:
            return await zygote.fork()
        except (ProtocolError, OSError, KeyError, ValueError) as err:
            if self._closed:
                raise
            log.error("the zygote failed (%s); starting another", err)
            return await (await self._new_zygote()).fork()

    async def _start_one(self) -> WorkProcess:
        proc = await self._fork()
        self._all.add(proc)
        try:
            meta, _ = await asyncio.wait_for(proc.recv_frame(), self.settings.start_timeout)
            if not meta.get("ready"):
                raise ProtocolError("the work process did not report ready")
        except BaseException:
            self._all.discard(proc)
            proc.kill()
            proc.close()
            raise
        if proc.pidfd >= 0:
            asyncio.get_running_loop().add_reader(proc.pidfd, self._on_exit, proc)
        self._release(proc)
        return proc

    async def close(self) -> None:
        """Kill every process (the worker is stopping; in-flight calls have ended or are lost)."""
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        for proc in list(self._all):
            proc.kill()
            proc.close()
        if self._zygote is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._zygote.kill)
            self._zygote = None
        self._all.clear()
        self._idle.clear()
        self._set_health()
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(RuntimeError("the server is stopping"))

    @property
    def live(self) -> int:
        return sum(1 for p in self._all if not p.dead)

    @property
    def serving(self) -> bool:
        return self._serving

    def _set_health(self) -> None:
        serving = self.live > 0 and not self._closed
        if serving != self._serving:
            self._serving = serving
            self._on_health(serving)

    def _spawn_later(self) -> None:
        """Start a replacement in the background, backing off while starts keep failing."""
        if self._closed:
            return

        async def replace() -> None:
            while not self._closed:
                delay = min(RESTART_BACKOFF_MAX, 0.5 * (2**self._failures - 1))
                if delay:
                    await asyncio.sleep(delay)
                try:
                    await self._start_one()
                except Exception as err:  # logged, retried with back-off
                    self._failures += 1
                    log.error("a work process failed to start (%s); retrying", err)
                    self._set_health()
                    continue
                self._failures = 0
                self._set_health()
                return

        task = asyncio.get_running_loop().create_task(replace())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_exit(self, proc: WorkProcess) -> None:
        """The process ended (pidfd readable): drop it and start another."""
        loop = asyncio.get_running_loop()
        with contextlib.suppress(Exception):
            loop.remove_reader(proc.pidfd)
        if proc not in self._all:
            return
        if not proc.dead:  # not a kill of ours: a crash or the OOM killer
            self.deaths += 1
            proc.dead = True
            log.error("work process %d ended by itself (a crash, or the OOM killer); "
                      "replacing it", proc.pid)  # fmt: skip
        self._discard(proc)

    def _discard(self, proc: WorkProcess) -> None:
        """Forget a dead or killed process (reaped off the event loop) and start another."""
        if proc not in self._all:
            return
        self._all.discard(proc)
        with contextlib.suppress(ValueError):
            self._idle.remove(proc)
        if proc.pidfd >= 0:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(proc.pidfd)
        proc.close()  # the zygote reaps it
        self._set_health()
        self._spawn_later()

    # ---- calls ---------------------------------------------------------------------------------

    def _release(self, proc: WorkProcess) -> None:
        if proc.dead or self._closed:
            return
        proc.cancel[0] = 0
        self._idle.append(proc)
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break

    async def _acquire(self, deadline: float | None, wanted: set[str]) -> WorkProcess:
        while True:
            if self._closed:
                raise RuntimeError("the server is stopping")
            if self._idle:
                # A process that already holds the call's models, else the longest idle.
                for proc in self._idle:
                    if wanted and wanted <= proc.models:
                        self._idle.remove(proc)
                        return proc
                return self._idle.popleft()
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            timeout = None if deadline is None else deadline - time.monotonic()
            if timeout is not None and timeout <= 0:
                raise DeadlineExceeded()
            try:
                await asyncio.wait_for(waiter, timeout)
            except TimeoutError:
                raise DeadlineExceeded() from None
            finally:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)

    async def select(self, request: WireRequest, deadline: float | None) -> Reply:
        """Run a SelectQueries request; raise the core exception its work raised."""
        header = request.header
        sources = [m.WhichOneof("source") for m in header.models]
        by_hash = [m.sha256 for m, s in zip(header.models, sources, strict=True) if s == "sha256"]
        acquired = await self._acquire(deadline, set(by_hash))
        proc: WorkProcess | None = acquired
        try:
            provide: list[tuple[str, bytes]] = []
            for i, sha in enumerate(by_hash):
                # The worker's cache alone says what is cached (one answer whichever process
                # runs the call); a process's session only saves loading it again.
                data = self.models.get(sha)  # keeps it recent
                if data is None:
                    index = [j for j, s in enumerate(sources) if s == "sha256"][i]
                    if len(sha) == 64 and set(sha) <= set("0123456789abcdef"):
                        self._observe_lookup("sha256", False, self.models.nbytes)
                        raise ModelNotCached(f"models[{index}].sha256", sha)
                    continue  # the work process names the malformed hash
                self._observe_lookup("sha256", True, self.models.nbytes)
                if sha not in acquired.models and all(s != sha for s, _ in provide):
                    provide.append((sha, data))
            header_bytes = header.SerializeToString()
            parts: list[Any] = [header_bytes]
            offset = len(header_bytes)
            tensors = []
            for name, tensor in request.tensors.items():
                size = tensor.nbytes
                tensors.append([name, tensor.dtype, list(tensor.shape), offset, size])
                if tensor.parts is None:
                    parts.append(tensor.raw_data)
                else:  # a stream's chunks, joined by writing them in order
                    parts.extend(tensor.parts)
                offset += size
            provided = []
            for sha, data in provide:
                provided.append([sha, offset, len(data)])
                parts.append(data)
                offset += len(data)
            meta = {
                "op": "select", "deadline": deadline, "header": [0, len(header_bytes)],
                "tensors": tensors, "provide": provided, "wire_bytes": request.wire_bytes,
            }  # fmt: skip
            proc = None  # _call gives it back or discards it
            reply = await self._call(acquired, meta, parts, offset, deadline)
        finally:
            if proc is not None:
                self._release(proc)
        for spec, source, digest in zip(header.models, sources, reply.digests, strict=False):
            if source == "onnx":
                hit = self.models.get(digest) is not None
                self.models.put(digest, spec.onnx)
                self._observe_lookup("bytes", hit, self.models.nbytes)
        return reply

    async def stopping(self, request: pb.CheckStoppingRequest, deadline: float | None) -> bytes:
        """Run a CheckStopping request; the encoded CheckStoppingResponse."""
        body = request.SerializeToString()
        proc = await self._acquire(deadline, set())
        meta = {"op": "stopping", "deadline": deadline, "header": [0, len(body)]}
        return (await self._call(proc, meta, [body], len(body), deadline)).body

    async def labels(self, op: str, request: Any, deadline: float | None) -> bytes:
        """Run a LabelQualityService request (op: a key of work.LABEL_OPS); the encoded
        response."""
        body = request.SerializeToString()
        proc = await self._acquire(deadline, set())
        meta = {"op": op, "deadline": deadline, "header": [0, len(body)]}
        return (await self._call(proc, meta, [body], len(body), deadline)).body

    async def _call(
        self,
        proc: WorkProcess,
        meta: dict[str, Any],
        parts: list[Any],
        size: int,
        deadline: float | None,
    ) -> Reply:
        """Send, wait until the deadline, stop or kill; always gives proc back or discards it."""
        loop = asyncio.get_running_loop()

        async def exchange() -> tuple[dict[str, Any], bytearray]:
            await proc.send(meta, parts, size)
            return await proc.recv_frame()

        task = loop.create_task(exchange())
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            done, _ = await asyncio.wait({task}, timeout=timeout)
        except asyncio.CancelledError:  # the call was cancelled, or ran into the deadline cap
            self._abandon(proc, task)
            raise
        if not done:
            self._abandon(proc, task)
            raise DeadlineExceeded()
        try:
            reply_meta, body = task.result()
        except (ProtocolError, OSError) as err:
            proc.dead = True
            self.deaths += 1
            self._discard(proc)
            log.error("work process %d ended during a call (%s)", proc.pid, err)
            raise WorkFailed(
                reasons.WORK_PROCESS_DIED,
                "the work process running this request ended under it (a crash, or the "
                "kernel's OOM killer: most likely over the container's memory); the request "
                "was abandoned",
            ) from None
        proc.models = set(reply_meta.get("models") or ())
        self._release(proc)
        if not reply_meta.get("ok"):
            raise_error(reply_meta.get("error"))
        return Reply(
            bytes(body),
            rows=int(reply_meta.get("rows", 0)),
            timings=[(str(n), float(s)) for n, s in reply_meta.get("timings", [])],
            digests=[str(d) for d in reply_meta.get("digests", [])],
            peak_rss=int(reply_meta.get("peak_rss", 0)),
        )

    def _abandon(self, proc: WorkProcess, task: "asyncio.Task[Any]") -> None:
        """Raise the cancel flag; kill the process unless it answers within stop_grace."""
        proc.cancel[0] = 1

        async def settle() -> None:
            try:
                await asyncio.wait_for(asyncio.shield(task), self.settings.stop_grace)
            except BaseException:  # still busy, or died: kill and replace
                self.kills += 1
                proc.kill()
                task.cancel()
                log.warning("work process %d did not stop within %.2f s of its call's end; "
                            "killed it", proc.pid, self.settings.stop_grace)  # fmt: skip
                self._discard(proc)
                return
            meta, _ = task.result()
            proc.models = set(meta.get("models") or ())
            self._release(proc)

        bg = asyncio.get_running_loop().create_task(settle())
        self._tasks.add(bg)
        bg.add_done_callback(self._tasks.discard)


__all__ = ["ModelBytes", "PoolSettings", "Reply", "WorkPool", "WorkProcess"]
