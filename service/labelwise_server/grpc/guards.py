"""What stands in front of the service: TLS credentials, bearer tokens, the deadline cap.

Health and reflection stay open (no token, no cap): probes and tools must reach them, and
the health Watch stream is meant to stay open.
"""

import asyncio
import hashlib
import hmac
from collections.abc import Awaitable, Callable, Collection
from pathlib import Path
from typing import Any, TypeAlias

import grpc

from labelwise_server.config import Config

Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
Behavior: TypeAlias = Callable[[Any, Any], Awaitable[Any]]
# around(behavior, request, context) runs the behavior, or aborts instead.
Around: TypeAlias = Callable[[Behavior, Any, Any], Awaitable[Any]]


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


class _Guard(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Guards the unary-response methods of the given services; others pass untouched."""

    def __init__(self, services: Collection[str]) -> None:
        self._services = frozenset(services)

    async def around(self, behavior: Behavior, request: Any, context: Any) -> Any:
        raise NotImplementedError

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler:
        handler = await continuation(handler_call_details)
        if handler is None or handler.response_streaming:
            return handler
        service = handler_call_details.method.split("/")[1]
        if service not in self._services:
            return handler
        return wrap_unary_response(handler, self.around)


class BearerTokenInterceptor(_Guard):
    """UNAUTHENTICATED unless the call carries `authorization: Bearer <one of the tokens>`.

    Tokens are compared by SHA-256 digest with hmac.compare_digest against every token, so the
    time taken says nothing about how much of a token matched, nor which.
    """

    def __init__(self, services: Collection[str], tokens: Collection[str]) -> None:
        super().__init__(services)
        self._digests = [_digest(t) for t in tokens]

    def accepts(self, metadata: Any) -> bool:
        presented = None
        for key, value in metadata or ():
            if key == "authorization":
                presented = value
        if not isinstance(presented, (str, bytes)):
            return False
        if isinstance(presented, bytes):
            presented = presented.decode("latin-1")
        scheme, _, token = presented.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return False
        digest = _digest(token.strip())
        match = False
        for known in self._digests:
            match |= hmac.compare_digest(digest, known)
        return match

    async def around(self, behavior: Behavior, request: Any, context: Any) -> Any:
        if not self.accepts(context.invocation_metadata()):
            await context.abort(
                grpc.StatusCode.UNAUTHENTICATED,
                "missing or invalid bearer token (metadata `authorization: Bearer TOKEN`)",
            )
        return await behavior(request, context)


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
    """When the last call in flight ends, hand the heap's free pages back to the kernel.

    glibc keeps what a big request freed in its arenas (one per thread that allocated), so
    RSS would stay at its high-water mark; malloc_trim(0) releases it. It runs at most once
    per min_interval seconds, off the event loop, and only when no call is running.
    """

    def __init__(self, services: Collection[str], min_interval: float = 1.0) -> None:
        super().__init__(services)
        self._active = 0
        self._last = 0.0
        self._interval = min_interval
        self._trim = _malloc_trim()

    async def around(self, behavior: Behavior, request: Any, context: Any) -> Any:
        self._active += 1
        try:
            return await behavior(request, context)
        finally:
            self._active -= 1
            loop = asyncio.get_running_loop()
            if self._active == 0 and loop.time() - self._last >= self._interval:
                self._last = loop.time()
                loop.run_in_executor(None, self._trim)
