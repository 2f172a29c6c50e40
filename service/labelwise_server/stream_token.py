"""The stream token: a stream's decision state, signed, carried by the caller between calls.

Layout of version 1 (little-endian; the tag covers every byte before it):

    magic "LWst" | version u8 = 1 | reserved u8 = 0 | config digest 8 bytes
    | seed u64 | seen u64 | labeled u64 | window_seen u64 | window_labeled u64
    | estimate f64 | theta f64 | history count u16 | history f64 × count
    | tag: HMAC-SHA256(key, everything before)[:16]

The config digest is the first 8 bytes of SHA-256 over the stream's canonical configuration
(strategy name, every parameter default-filled, budget, window cap): a token verified under the
key but issued for another configuration is told apart from one altered or signed with another
key. Decoding is bounded: the length is checked before anything is read, the tag before any
field is trusted, and every field against its range afterwards.
"""

import hashlib
import hmac
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from labelwise_server.errors import InvalidArgument
from labelwise_server.strategies.stream import MAX_HISTORY, StreamState

MAGIC = b"LWst"
VERSION = 1
TAG_BYTES = 16
DIGEST_BYTES = 8
MAX_TOKEN_BYTES = 8192
_HEAD = struct.Struct("<4sBB8sQQQQQddH")
_MIN_BYTES = _HEAD.size + TAG_BYTES
# The embedded development key: anyone can forge tokens signed with it (serve logs a warning).
DEVELOPMENT_KEY = b"labelwise-development-stream-token-key: not a secret"
FIELD = "token"


@dataclass(frozen=True)
class TokenKey:
    key: bytes

    def tag(self, body: bytes) -> bytes:
        return hmac.new(self.key, body, hashlib.sha256).digest()[:TAG_BYTES]


def config_digest(canonical: str) -> bytes:
    return hashlib.sha256(canonical.encode()).digest()[:DIGEST_BYTES]


def encode_token(state: StreamState, digest: bytes, key: TokenKey) -> bytes:
    body = _HEAD.pack(
        MAGIC,
        VERSION,
        0,
        digest,
        state.seed,
        state.seen,
        state.labeled,
        state.window_seen,
        state.window_labeled,
        state.estimate,
        state.theta,
        len(state.history),
    ) + struct.pack(f"<{len(state.history)}d", *state.history)
    return body + key.tag(body)


def decode_token(token: bytes, digest: bytes, key: TokenKey, max_history: int) -> StreamState:
    """The state in token; InvalidArgument("token", …) when it is not one this configuration
    and key issued."""
    size = len(token)
    if size > MAX_TOKEN_BYTES:
        raise InvalidArgument(FIELD, f"must be at most {MAX_TOKEN_BYTES} bytes; got {size}")
    if size < _MIN_BYTES or token[:4] != MAGIC:
        raise InvalidArgument(FIELD, "is not a stream token (send the token of the last answer)")
    if token[4] != VERSION:
        raise InvalidArgument(FIELD, f"must be a version {VERSION} token; got version {token[4]}")
    body, tag = token[:-TAG_BYTES], token[-TAG_BYTES:]
    if not hmac.compare_digest(key.tag(body), tag):
        raise InvalidArgument(
            FIELD,
            "failed its integrity check: it was altered, or signed with another key (every "
            "replica must have the same --stream-token-key-file)",
        )
    (_, _, reserved, token_digest, seed, seen, labeled, window_seen, window_labeled,
     estimate, theta, count) = _HEAD.unpack_from(body)  # fmt: skip
    if token_digest != digest:
        raise InvalidArgument(
            FIELD,
            "was issued for another configuration (strategy, params, budget or window_cap); "
            "keep them fixed for a stream, or start a new one with an empty token",
        )
    if len(body) != _HEAD.size + 8 * count:
        raise InvalidArgument(FIELD, "is not a stream token: its length does not match")
    history = list(struct.unpack_from(f"<{count}d", body, _HEAD.size))
    sane = (
        reserved == 0
        and labeled <= seen
        and window_labeled <= window_seen
        and count <= min(max_history, MAX_HISTORY, seen)
        and math.isfinite(estimate)
        and estimate >= 0
        and math.isfinite(theta)
        and theta >= 0
        and all(0.0 <= u <= 1.0 for u in history)
    )
    if not sane:
        raise InvalidArgument(FIELD, "holds a state out of range")
    return StreamState(seed, seen, labeled, estimate, theta, window_seen, window_labeled, history)


MIN_KEY_BYTES = 32
KEY_ENV = "LABELWISE_STREAM_TOKEN_KEY"


class TokenKeyError(ValueError):
    """The configured stream token key cannot be used."""


def load_key(path: str, environ: Mapping[str, str]) -> tuple[TokenKey, bool]:
    """The key from the file at path, else from $LABELWISE_STREAM_TOKEN_KEY, else the
    development key; and whether it is the development key."""
    if path:
        try:
            key = Path(path).read_bytes().strip()
        except OSError as err:
            raise TokenKeyError(f"--stream-token-key-file {path}: {err.strerror}") from None
    else:
        key = environ.get(KEY_ENV, "").encode()
    if not key:
        return TokenKey(DEVELOPMENT_KEY), True
    if len(key) < MIN_KEY_BYTES:
        raise TokenKeyError(f"the stream token key must be at least {MIN_KEY_BYTES} bytes")
    return TokenKey(key), False
