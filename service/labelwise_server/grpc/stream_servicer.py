"""StreamSelectionService: decode, decide on a compute thread, encode; nothing else.

The decisions (labelwise_server.streaming) run no caller model and are bounded per call (at
most streaming.MAX_ITEMS items, stop-checked), so they run on the server's compute threads
under the call's deadline rather than in a work process. DecideStream answers each message
in order over one call, keeping the stream's state between messages.
"""

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import Executor
from typing import Any

import grpc

from labelwise.v1 import stream_selection_pb2 as spb
from labelwise_server.dataplane import stop_check
from labelwise_server.errors import InvalidArgument, StreamIdle
from labelwise_server.grpc.errors import translate_errors
from labelwise_server.metrics import Metrics
from labelwise_server.strategies.stream import StreamState
from labelwise_server.stream_token import TokenKey
from labelwise_server.streaming import StreamConfig, decide
from labelwise_server.tensors import MalformedMessage

Context = grpc.aio.ServicerContext[Any, Any]


class StreamSelectionServicer:
    def __init__(
        self,
        key: TokenKey,
        executor: Executor,
        max_elements: int,
        metrics: Metrics,
        idle_seconds: float = 10.0,
    ) -> None:
        self._key = key
        self._idle = idle_seconds if idle_seconds > 0 else None
        self._executor = executor
        self._max_elements = max_elements
        self._metrics = metrics

    async def _decide(
        self,
        request: spb.DecideRequest,
        context: Context,
        previous: tuple[StreamConfig, StreamState] | None = None,
        prefix: str = "",
    ) -> tuple[spb.DecideResponse, StreamConfig, StreamState]:
        remaining = context.time_remaining()
        deadline = None if remaining is None else time.monotonic() + remaining
        stop = stop_check(deadline, _cancelled(context))

        def work() -> tuple[spb.DecideResponse, StreamConfig, StreamState]:
            started = time.perf_counter()
            answer = decide(request, self._key, self._max_elements, previous=previous,
                            prefix=prefix, stop=stop)  # fmt: skip
            self._metrics.strategy_seconds.labels(strategy=answer[1].strategy.name).observe(
                time.perf_counter() - started
            )
            return answer

        return await asyncio.get_running_loop().run_in_executor(self._executor, work)

    @translate_errors
    async def Decide(
        self, request: spb.DecideRequest | MalformedMessage, context: Context
    ) -> spb.DecideResponse:
        if isinstance(request, MalformedMessage):
            raise InvalidArgument("request", f"is not a valid DecideRequest: {request}")
        return (await self._decide(request, context))[0]

    @translate_errors
    async def DecideStream(
        self, requests: AsyncIterator[spb.DecideStreamRequest | MalformedMessage], context: Context
    ) -> None:
        previous: tuple[StreamConfig, StreamState] | None = None
        messages = aiter(requests)
        count = 0
        while True:
            # A stream that sends nothing for --stream-idle-seconds ends (DEADLINE_EXCEEDED,
            # STREAM_IDLE), so an idle caller does not hold a --max-concurrent-rpcs slot.
            try:
                async with asyncio.timeout(self._idle):
                    message = await anext(messages)
            except StopAsyncIteration:
                break
            except TimeoutError:
                raise StreamIdle(self._idle or 0.0, count) from None
            count += 1
            if isinstance(message, MalformedMessage):
                raise InvalidArgument("request", f"is not a valid DecideStreamRequest: {message}")
            response, config, state = await self._decide(
                message.request, context, previous, prefix="request."
            )
            previous = (config, state)
            await context.write(spb.DecideStreamResponse(response=response))


def _cancelled(context: Context) -> threading.Event:
    """Set once the call ends (the client left, or the deadline passed)."""
    cancelled = threading.Event()
    context.add_done_callback(lambda _: cancelled.set())  # type: ignore[arg-type]
    if context.done():
        cancelled.set()
    return cancelled
