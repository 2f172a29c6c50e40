"""The stream token: round trip, bounded hostile-safe decoding, and the key's sources."""

import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labelwise_server.errors import InvalidArgument
from labelwise_server.strategies.stream import StreamState
from labelwise_server.stream_token import (
    DEVELOPMENT_KEY,
    MAX_TOKEN_BYTES,
    TokenKey,
    TokenKeyError,
    config_digest,
    decode_token,
    encode_token,
    load_key,
)

KEY = TokenKey(b"k" * 32)
DIGEST = config_digest("v1|quantile_filter|w=100")
STATE = StreamState(seed=2**64 - 1, seen=10, labeled=3, estimate=2.5, theta=0.7, window_seen=4,
                    window_labeled=1, history=[0.25, 0.5, 1.0])  # fmt: skip


def test_a_state_round_trips_exactly() -> None:
    token = encode_token(STATE, DIGEST, KEY)
    assert len(token) == 88 + 8 * 3
    assert decode_token(token, DIGEST, KEY, max_history=100) == STATE


def test_the_largest_token_is_a_few_kilobytes() -> None:
    state = StreamState(seed=1, seen=10**6, history=[0.5] * 256)
    assert len(encode_token(state, DIGEST, KEY)) == 88 + 8 * 256 < MAX_TOKEN_BYTES


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_are_refused_naming_the_token_or_decoded(data: bytes) -> None:
    with pytest.raises(InvalidArgument) as caught:
        decode_token(data, DIGEST, KEY, max_history=100)
    assert caught.value.field == "token"


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 111), st.integers(1, 255))
def test_every_altered_byte_is_refused(position: int, mask: int) -> None:
    token = bytearray(encode_token(STATE, DIGEST, KEY))
    token[position] ^= mask
    with pytest.raises(InvalidArgument) as caught:
        decode_token(bytes(token), DIGEST, KEY, max_history=100)
    assert caught.value.field == "token"


@pytest.mark.parametrize(
    ("state", "max_history"),
    [
        (StreamState(seed=0, seen=1, labeled=2), 0),  # more labels than items
        (StreamState(seed=0, seen=5, history=[0.1] * 6), 100),  # more history than items
        (StreamState(seed=0, seen=500, history=[0.1] * 6), 5),  # more than the window w
        (StreamState(seed=0, seen=5, history=[1.5]), 100),  # a utility out of [0, 1]
        (StreamState(seed=0, seen=5, estimate=float("nan")), 0),
        (StreamState(seed=0, seen=5, theta=float("inf")), 0),
        (StreamState(seed=0, seen=5, window_seen=1, window_labeled=2), 0),
    ],
)
def test_a_signed_state_out_of_range_is_refused(state: StreamState, max_history: int) -> None:
    """Even a correctly signed token (a leaked key) cannot carry an impossible state."""
    token = encode_token(state, DIGEST, KEY)
    with pytest.raises(InvalidArgument, match="out of range"):
        decode_token(token, DIGEST, KEY, max_history)


def test_other_key_other_configuration_and_size_are_told_apart() -> None:
    token = encode_token(STATE, DIGEST, KEY)
    with pytest.raises(InvalidArgument, match="integrity"):
        decode_token(token, DIGEST, TokenKey(b"j" * 32), 100)
    with pytest.raises(InvalidArgument, match="another configuration"):
        decode_token(token, config_digest("v1|other"), KEY, 100)
    with pytest.raises(InvalidArgument, match="at most 8192 bytes"):
        decode_token(token + b"\0" * MAX_TOKEN_BYTES, DIGEST, KEY, 100)
    forged_count = token[:86] + struct.pack("<H", 60000) + token[88:]
    with pytest.raises(InvalidArgument, match="integrity"):
        decode_token(forged_count, DIGEST, KEY, 100)


def test_the_key_comes_from_the_file_then_the_environment_then_the_development_key(
    tmp_path: Path,
) -> None:
    path = tmp_path / "key"
    path.write_bytes(b"f" * 40 + b"\n")
    assert load_key(str(path), {"LABELWISE_STREAM_TOKEN_KEY": "e" * 40}) == (
        TokenKey(b"f" * 40),
        False,
    )
    assert load_key("", {"LABELWISE_STREAM_TOKEN_KEY": "e" * 40}) == (TokenKey(b"e" * 40), False)
    assert load_key("", {}) == (TokenKey(DEVELOPMENT_KEY), True)
    with pytest.raises(TokenKeyError, match="at least 32 bytes"):
        load_key("", {"LABELWISE_STREAM_TOKEN_KEY": "short"})
    with pytest.raises(TokenKeyError, match="stream-token-key-file"):
        load_key(str(tmp_path / "missing"), {})
