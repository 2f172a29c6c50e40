"""What stands in front of the service: TLS credentials, bearer tokens, the concurrency
limits, the deadline cap.

Health stays open (no token, no deadline cap): probes must reach it, and the health Watch
stream is meant to stay open. Health and reflection have a budget of their own
(StreamBudgetInterceptor): Health.Check is always answered, their streams are capped, and
neither counts against the service's --max-concurrent-rpcs.
"""

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from pathlib import Path
from typing import Any, TypeAlias

import grpc

from labelwise_server.config import Config
from labelwise_server.grpc.errors import shed_status
from labelwise_server.reasons import TOO_MANY_REQUESTS, TOO_MANY_STREAMS

Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
Behavior: TypeAlias = Callable[[Any, Any], Awaitable[Any]]
# around(behavior, request, context) runs the behavior, or aborts instead.
Around: TypeAlias = Callable[[Behavior, Any, Any], Awaitable[Any]]
# The same for a response-streaming behavior: its responses, or an abort instead.
AroundStream: TypeAlias = Callable[[Any, Any, Any], AsyncIterator[Any]]


class ConfigError(ValueError):
    """A setting that cannot be used (a missing file, half a TLS key pair)."""


def server_credentials(config: Config) -> grpc.ServerCredentials | None:
    """TLS from PEM files, with client certificates required when a client CA is given;
    None for plaintext."""
    if not config.tls_cert and not config.tls_key:
        if config.tls_client_ca:
            raise ConfigError("--tls-client-ca needs --tls-cert and --tls-key")
        return None
    if not (config.tls_cert and config.tls_key):
        raise ConfigError("--tls-cert and --tls-key go together")
    cert, key = _read(config.tls_cert, "--tls-cert"), _read(config.tls_key, "--tls-key")
    client_ca = _read(config.tls_client_ca, "--tls-client-ca") if config.tls_client_ca else None
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


def _read(path: str, flag: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise ConfigError(f"{flag} {path}: {err.strerror}") from err


def load_tokens(config: Config) -> list[str]:
    """Bearer tokens from --auth-tokens (comma-separated) and --auth-token-file (one a line)."""
    tokens = [t.strip() for t in config.auth_tokens.split(",")]
    if config.auth_token_file:
        text = _read(config.auth_token_file, "--auth-token-file").decode("utf-8", "replace")
        tokens += [line.strip() for line in text.splitlines() if not line.startswith("#")]
    tokens = [t for t in tokens if t]
    for token in tokens:
        if not token.isascii() or not token.isprintable() or " " in token:
            raise ConfigError("a bearer token must be printable ASCII without spaces")
    return tokens


def _digest(token: str | bytes) -> bytes:
    data = token.encode("utf-8", "replace") if isinstance(token, str) else token
    return hashlib.sha256(data).digest()


def wrap_unary_response(handler: Handler, around: Around) -> Handler:
    """The handler with its behavior run through around(behavior, request, context)."""
    behavior: Any = handler.unary_unary or handler.stream_unary

    async def guarded(request: Any, context: Any) -> Any:
        return await around(behavior, request, context)

    make = (
        grpc.unary_unary_rpc_method_handler
        if handler.unary_unary
        else grpc.stream_unary_rpc_method_handler
    )
    return make(guarded, handler.request_deserializer, handler.response_serializer)


def wrap_streaming_response(handler: Handler, around: AroundStream) -> Handler:
    """The response-streaming handler with its responses passed through around(...)."""
    behavior: Any = handler.unary_stream or handler.stream_stream

    async def guarded(request: Any, context: Any) -> AsyncIterator[Any]:
        async for response in around(behavior, request, context):
            yield response

    make = (
        grpc.unary_stream_rpc_method_handler
        if handler.unary_stream
        else grpc.stream_stream_rpc_method_handler
    )
    return make(guarded, handler.request_deserializer, handler.response_serializer)


async def responses(behavior: Any, request: Any, context: Any) -> AsyncIterator[Any]:
    """A streaming behavior's responses, whether it yields them or writes them itself
    (the aio health servicer's Watch calls context.write)."""
    result = behavior(request, context)
    if hasattr(result, "__anext__"):
        async for response in result:
            yield response
    else:
        await result


class _Guard(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Guards the methods of the given services: the unary-response ones through around(),
    with streams=True the response-streaming ones too, through around_stream()."""

    def __init__(
        self, services: Collection[str], unary: bool = True, streams: bool = False
    ) -> None:
        self._services = frozenset(services)
        self._unary = unary
        self._streams = streams

    async def around(self, behavior: Behavior, request: Any, context: Any) -> Any:
        raise NotImplementedError

    def around_stream(self, behavior: Any, request: Any, context: Any) -> AsyncIterator[Any]:
        raise NotImplementedError

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        service = handler_call_details.method.split("/")[1]
        if service not in self._services:
            return handler
        if handler.response_streaming:
            return (
                wrap_streaming_response(handler, self.around_stream) if self._streams else handler
            )
        return wrap_unary_response(handler, self.around) if self._unary else handler


INVALID_TOKEN = "missing or invalid bearer token (metadata `authorization: Bearer TOKEN`)"
SEVERAL_TOKENS = "exactly one authorization header, please; the call carried several"


class BearerTokenInterceptor(_Guard):
    """UNAUTHENTICATED unless the call carries exactly one `authorization` header, and it is
    `Bearer <one of the tokens>`.

    Tokens are compared by SHA-256 digest with hmac.compare_digest against every token, so the
    time taken says nothing about how much of a token matched, nor which. Two headers are
    refused rather than one picked: a proxy and the client could each think theirs counts.
    """

    def __init__(self, services: Collection[str], tokens: Collection[str]) -> None:
        super().__init__(services, streams=True)
        self._digests = [_digest(t) for t in tokens]

    def refusal(self, metadata: Any) -> str | None:
        """Why the call is refused, or None when it carries one known token."""
        presented = [value for key, value in metadata or () if key == "authorization"]
        if len(presented) > 1:
            return SEVERAL_TOKENS
        if not presented or not isinstance(presented[0], (str, bytes)):
            return INVALID_TOKEN
        value = presented[0]
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        scheme, _, token = value.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return INVALID_TOKEN
        digest = _digest(token.strip())
        match = False
        for known in self._digests:
            match |= hmac.compare_digest(digest, known)
        return None if match else INVALID_TOKEN

    def accepts(self, metadata: Any) -> bool:
        return self.refusal(metadata) is None

    async def around(self, behavior: Behavior, request: Any, context: Any) -> Any:
        refusal = self.refusal(context.invocation_metadata())
        if refusal is not None:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, refusal)
        return await behavior(request, context)

    async def around_stream(self, behavior: Any, request: Any, context: Any) -> AsyncIterator[Any]:
        refusal = self.refusal(context.invocation_metadata())
        if refusal is not None:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, refusal)
        async for response in responses(behavior, request, context):
            yield response


class _Budget(_Guard):
    """At most `limit` guarded calls of this worker at once; the next is refused at once with
    RESOURCE_EXHAUSTED and an ErrorInfo (reason, limit), and on_shed() is called.

    Calls run on the one event loop of the server, so the count needs no lock.
    """

    def __init__(
        self,
        services: Collection[str],
        limit: int,
        status: grpc.Status,
        on_shed: Callable[[], None],
        unary: bool,
    ) -> None:
        if limit < 1:
            raise ConfigError(f"a concurrency limit must be 1 or more; got {limit}")
        super().__init__(services, unary=unary, streams=True)
        self.limit = limit
        self.active = 0
        self._status = status
        self._on_shed = on_shed

    async def _shed(self, context: Any) -> None:
        self._on_shed()
        await context.abort_with_status(self._status)

    async def around(self, behavior: Behavior, request: Any, context: Any) -> Any:
        if self.active >= self.limit:
            await self._shed(context)
        self.active += 1
        try:
            return await behavior(request, context)
        finally:
            self.active -= 1

    async def around_stream(self, behavior: Any, request: Any, context: Any) -> AsyncIterator[Any]:
        if self.active >= self.limit:
            await self._shed(context)
        self.active += 1
        try:
            async for response in responses(behavior, request, context):
                yield response
        finally:
            self.active -= 1


class ConcurrencyLimitInterceptor(_Budget):
    """The service's own --max-concurrent-rpcs: only its calls count, so health and reflection
    neither take its slots nor are refused for want of one (grpc's maximum_concurrent_rpcs
    counts every RPC; the server keeps it only as a larger backstop, see server.py)."""

    def __init__(
        self, services: Collection[str], limit: int, on_shed: Callable[[], None] = lambda: None
    ) -> None:
        status = shed_status(
            TOO_MANY_REQUESTS,
            f"the server is busy: {limit} calls are running (--max-concurrent-rpcs); "
            "retry with backoff",
            limit,
        )
        super().__init__(services, limit, status, on_shed, unary=True)


class StreamBudgetInterceptor(_Budget):
    """Health.Watch and reflection streams of their own budget (--max-watch-streams): beyond
    it they are refused; Health.Check (unary) always passes."""

    def __init__(
        self, services: Collection[str], limit: int, on_shed: Callable[[], None] = lambda: None
    ) -> None:
        status = shed_status(
            TOO_MANY_STREAMS,
            f"{limit} health watch and reflection streams are open (--max-watch-streams); "
            "use Health.Check, or retry later",
            limit,
        )
        super().__init__(services, limit, status, on_shed, unary=False)


class DeadlineCapInterceptor(_Guard):
    """Ends a call at max_seconds when its own deadline is later or absent.

    The handler task is cancelled; the call ends DEADLINE_EXCEEDED, and its end tells the
    strategy thread (through the context's done callback) to abandon the work.
    """

    def __init__(self, services: Collection[str], max_seconds: float) -> None:
        super().__init__(services)
        self._max = max_seconds

    async def around(self, behavior: Behavior, request: Any, context: Any) -> Any:
        remaining = context.time_remaining()
        if remaining is not None and remaining <= self._max:
            return await behavior(request, context)
        try:
            async with asyncio.timeout(self._max):
                return await behavior(request, context)
        except TimeoutError:
            await context.abort(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"the call ran into the server's deadline cap of {self._max:g} s "
                "(--max-deadline-seconds); the work was abandoned",
            )


def _malloc_trim() -> Callable[[], None]:
    try:
        import ctypes

        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc
        return lambda: None
    return lambda: trim(0) and None


class MemoryTrimInterceptor(_Guard):
    """When the last call in flight has ended, hand the heap's free pages back to the kernel.

    glibc keeps what a big request freed in its arenas (one per thread that allocated), so
    RSS would stay at its high-water mark; malloc_trim(0) releases it. gRPC frees a call's
    message buffers only after the handler returns, so the trim runs `delay` seconds after
    the last call ends (one pending trim at a time), off the event loop, and only if no call
    is running by then.
    """

    def __init__(self, services: Collection[str], delay: float = 0.2) -> None:
        super().__init__(services)
        self._active = 0
        self._delay = delay
        self._pending = False
        self._trim = _malloc_trim()

    def _run(self) -> None:
        self._pending = False
        if self._active == 0:
            asyncio.get_running_loop().run_in_executor(None, self._trim)

    async def around(self, behavior: Behavior, request: Any, context: Any) -> Any:
        self._active += 1
        try:
            return await behavior(request, context)
        finally:
            self._active -= 1
            if self._active == 0 and not self._pending:
                self._pending = True
                asyncio.get_running_loop().call_later(self._delay, self._run)
