"""The data plane: one request's work under its deadline and cancellation, transport-free.

A transport (labelwise_server.grpc.servicer) converts its messages, then calls DataPlane
with the call's deadline (monotonic clock) and a cancellation event. The work runs in a
work process of the WorkPool (labelwise_server.sandbox), which stops it at the deadline or
on cancellation, or with --no-sandbox on the executor's threads, where the stop check
raises DeadlineExceeded or Cancelled between steps. Timing, in-flight and size metrics are
observed here, once.
"""

import asyncio
import threading
import time
from concurrent.futures import Executor

from google.protobuf.message import Message

from labelwise.v1 import query_selection_pb2 as pb
from labelwise_server.errors import Cancelled, DeadlineExceeded
from labelwise_server.metrics import Metrics
from labelwise_server.onnx_runner import ModelStore
from labelwise_server.pool_stream import RowWiseStream, StreamScorer
from labelwise_server.sandbox.pool import WorkPool
from labelwise_server.strategies._types import StopCheck
from labelwise_server.tensors import WireRequest
from labelwise_server.work import LABEL_OPS, encode_response, select_response, stopping_response

# Chunks of a stream scored as it arrives that may wait, received, for the scoring thread
# (DataPlane.select_streamed): with the one being scored and the one being received, at
# most STREAM_QUEUE + 2 chunks are held.
STREAM_QUEUE = 2


def stop_check(deadline: float | None, cancelled: threading.Event) -> StopCheck:
    """Raises DeadlineExceeded past deadline, Cancelled once cancelled is set."""

    def stop() -> None:
        if deadline is not None and time.monotonic() > deadline:
            raise DeadlineExceeded()
        if cancelled.is_set():
            raise Cancelled()

    return stop


class DataPlane:
    def __init__(
        self,
        metrics: Metrics,
        executor: Executor,
        max_pool_elements: int,
        models: ModelStore | None = None,
        *,
        pool: WorkPool | None = None,
        max_response_bytes: int = 256 << 20,
        max_stream_elements: int = 1 << 36,
    ) -> None:
        self._max_stream_elements = max_stream_elements
        if pool is not None:
            # With work processes, this process's only numeric work is scoring streamed
            # chunks (blocks of a few MB), where BLAS threads only contend with the gRPC
            # thread receiving the next chunk (65 ms instead of 1.5 ms for a [104857, 10]
            # row sum on a loaded 2-core machine): one BLAS thread here.
            from threadpoolctl import threadpool_limits

            threadpool_limits(limits=1, user_api="blas")
        self._metrics = metrics
        self._executor = executor
        self._max_elements = max_pool_elements
        self._models = models
        self._pool = pool
        self._max_response_bytes = max_response_bytes

    @property
    def max_response_bytes(self) -> int:
        return self._max_response_bytes

    async def select(
        self, request: WireRequest, deadline: float | None, cancelled: threading.Event
    ) -> pb.SelectQueriesResponse | bytes:
        """The response, or its encoding when a work process made it."""
        self._metrics.request_bytes.observe(request.wire_bytes)
        if self._pool is not None:
            self._metrics.in_flight.inc()
            try:
                reply = await self._pool.select(request, deadline)
            finally:
                self._metrics.in_flight.dec()
            self._metrics.pool_rows.observe(reply.rows)
            for strategy, seconds in reply.timings:
                self._observe(strategy, seconds)
            self._metrics.model_cache_bytes.set(self._pool.models.nbytes)
            return reply.body
        stop = stop_check(deadline, cancelled)
        request = request.joined()  # a stream's chunks, joined here for work in this process

        def work() -> pb.SelectQueriesResponse:
            response, rows = select_response(
                request,
                self._max_elements,
                self._models,
                stop,
                self._observe,
                self._max_response_bytes,
            )
            self._metrics.pool_rows.observe(rows)
            return response

        self._metrics.in_flight.inc()
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, work)
        finally:
            self._metrics.in_flight.dec()

    async def select_stream(
        self,
        request: RowWiseStream | WireRequest,
        deadline: float | None,
        cancelled: threading.Event,
    ) -> pb.SelectQueriesResponse | bytes:
        """A stream's response: scored as it arrives, or its reassembled request's."""
        if isinstance(request, RowWiseStream):
            return await self.select_streamed(request, deadline, cancelled)
        try:
            return await self.select(request, deadline, cancelled)
        finally:
            request.release()

    async def select_streamed(
        self, stream: RowWiseStream, deadline: float | None, cancelled: threading.Event
    ) -> pb.SelectQueriesResponse:
        """A stream of row-wise strategies (pool_stream.plan), scored chunk by chunk on the
        executor's threads while the next chunks arrive: no work process, no reassembly.

        Receiving and scoring are two tasks joined by a queue of at most STREAM_QUEUE
        chunks, so a compute thread that waits for a core (a loaded machine) does not stall
        the receiving at once; the chunks are scored one at a time, in order."""
        stop = stop_check(deadline, cancelled)
        scorer = StreamScorer(
            stream.header,
            stream.calls,
            self._max_elements,
            self._max_stream_elements,
            self._max_response_bytes,
            stop,
        )
        loop = asyncio.get_running_loop()
        ready: asyncio.Queue[tuple[int, WireRequest] | None] = asyncio.Queue(STREAM_QUEUE)
        failed = False

        async def score() -> None:
            nonlocal failed
            error: BaseException | None = None
            while (item := await ready.get()) is not None:
                if error is None:  # after a failure, drain: the receiver never blocks
                    try:
                        await loop.run_in_executor(self._executor, scorer.feed, item[1], item[0])
                    except Exception as err:
                        error, failed = err, True
            if error is not None:
                raise error

        self._metrics.in_flight.inc()
        scoring = asyncio.create_task(score())
        try:
            async for i, chunk in stream.chunks:
                await ready.put((i, chunk))
                if failed:
                    break
            await ready.put(None)
            await scoring
            results, n = await loop.run_in_executor(self._executor, scorer.finish, self._observe)
        finally:
            if not scoring.done():
                cancelled.set()  # the scoring thread stops at its next check
                scoring.cancel()
            self._metrics.in_flight.dec()
        self._metrics.request_bytes.observe(scorer.wire_bytes)
        self._metrics.pool_rows.observe(n)
        return encode_response(results, n)

    async def stopping(
        self, request: pb.CheckStoppingRequest, deadline: float | None
    ) -> pb.CheckStoppingResponse | bytes:
        if self._pool is not None:
            return await self._pool.stopping(request, deadline)

        def work() -> pb.CheckStoppingResponse:
            return stopping_response(request, self._max_elements)

        return await asyncio.get_running_loop().run_in_executor(self._executor, work)

    async def labels(
        self, op: str, request: Message, deadline: float | None, cancelled: threading.Event
    ) -> Message | bytes:
        """A LabelQualityService call (op: a key of work.LABEL_OPS): its response, or its
        encoding when a work process made it."""
        if self._pool is not None:
            return await self._pool.labels(op, request, deadline)
        stop = stop_check(deadline, cancelled)
        _, run = LABEL_OPS[op]

        def work() -> Message:
            return run(request, self._max_elements, stop)  # type: ignore[no-any-return]

        return await asyncio.get_running_loop().run_in_executor(self._executor, work)

    def _observe(self, strategy: str, seconds: float) -> None:
        self._metrics.strategy_seconds.labels(strategy=strategy).observe(seconds)
