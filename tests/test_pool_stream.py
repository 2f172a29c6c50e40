"""A stream scored as it arrives gives the unary answer, byte for byte (pool_stream.py).

The unary answer is the reference: the same request, whole, through decode_request and
select. Chunks are cut in every way the protocol allows (rows per chunk, tensors out of
step, exclude before, among and after the rows).
"""

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from labelwise.v1 import query_selection_pb2 as pb
from labelwise_server.errors import InvalidArgument
from labelwise_server.pool_stream import MIN_SLACK, StreamScorer, plan
from labelwise_server.tensors import (
    WireRequest,
    encode_tensor,
    parse_request,
    parse_stream_chunk,
)
from labelwise_server.work import select_response

MAX = 1 << 40
ROW_WISE = [
    "least_confidence", "margin", "ratio", "entropy", "random", "vote_entropy",
    "consensus_entropy", "kl_to_consensus", "bald", "variation_ratio", "mean_std",
]  # fmt: skip
AXIS = {"committee": 1, "committee_logits": 1}
WIRE = {np.dtype("<f2"): pb.DATA_TYPE_FLOAT16, np.dtype("<f4"): pb.DATA_TYPE_FLOAT32,
        np.dtype("<f8"): pb.DATA_TYPE_FLOAT64}  # fmt: skip


def header(strategies: list[str], k: int, **fields: Any) -> pb.SelectQueriesRequest:
    message = pb.SelectQueriesRequest(
        strategies=[pb.StrategySpec(name=name) for name in strategies], k=k, seed=7
    )
    for name, value in fields.items():
        if isinstance(value, list):
            getattr(message, name).extend(value)
        else:
            setattr(message, name, value)
    return message


def unary(message: pb.SelectQueriesRequest, arrays: dict[str, npt.NDArray[Any]]) -> bytes:
    whole = pb.SelectQueriesRequest()
    whole.CopyFrom(message)
    for name, array in arrays.items():
        getattr(whole, name).CopyFrom(encode_tensor(array, wire_dtype(array)))
    response, _ = select_response(
        parse_request(whole.SerializeToString()), MAX, None, lambda: None, lambda *_: None, 1 << 28
    )
    return response.SerializeToString(deterministic=True)


def wire_dtype(array: npt.NDArray[Any]) -> int:
    return WIRE.get(array.dtype, pb.DATA_TYPE_FLOAT64)


def chunk(message: pb.SelectQueriesRequest, **arrays: npt.NDArray[Any]) -> WireRequest:
    part = pb.SelectQueriesRequest()
    part.CopyFrom(message)
    for name, array in arrays.items():
        getattr(part, name).CopyFrom(encode_tensor(array, wire_dtype(array)))
    data = pb.SelectQueriesStreamRequest(chunk=part).SerializeToString()
    return parse_stream_chunk(data)


def rows(array: npt.NDArray[Any], name: str, start: int, end: int) -> npt.NDArray[Any]:
    return np.take(array, range(start, end), axis=AXIS.get(name, 0))


def streamed(
    message: pb.SelectQueriesRequest,
    arrays: dict[str, npt.NDArray[Any]],
    step: int | dict[str, int],
    exclude_at: str = "first",
) -> bytes:
    """The stream's answer: each tensor cut in chunks of step rows (per tensor when a dict,
    so tensors go out of step), exclude sent first, spread, or last."""
    first = pb.SelectQueriesRequest()
    first.CopyFrom(message)
    exclude = list(first.exclude)
    del first.exclude[:]
    steps = step if isinstance(step, dict) else dict.fromkeys(arrays, step)
    pieces: list[dict[str, npt.NDArray[Any]]] = []
    for name, array in arrays.items():
        n = array.shape[AXIS.get(name, 0)]
        for i, start in enumerate(range(0, n, steps[name])):
            while len(pieces) <= i:
                pieces.append({})
            pieces[i][name] = rows(array, name, start, min(n, start + steps[name]))
    chunks: list[pb.SelectQueriesRequest] = [pb.SelectQueriesRequest() for _ in pieces]
    if exclude_at == "first":
        first.exclude.extend(exclude)
    elif exclude_at == "last":
        chunks.append(pb.SelectQueriesRequest(exclude=exclude))
    else:  # spread over the chunks
        for i, part in enumerate(np.array_split(np.asarray(exclude, np.int64), len(chunks))):
            chunks[i].exclude.extend(part.tolist())
    calls = plan(first, chunk(first, **pieces[0]).tensors, 1 << 28)
    assert calls is not None
    scorer = StreamScorer(first, calls, MAX, MAX, 1 << 28, lambda: None)
    for i, part in enumerate(chunks):
        fields = pieces[i] if i < len(pieces) else {}
        scorer.feed(chunk(first if i == 0 else part, **fields), i)
        if i == 0 and exclude_at != "first":
            scorer.feed(chunk(part), i)  # the first chunk's share of exclude
    results, n_out = scorer.finish(lambda *_: None)
    from labelwise_server.grpc.codec import encode_response

    return encode_response(results, n_out).SerializeToString(deterministic=True)


def pool(n: int, c: int, m: int, dtype: Any, seed: int = 0) -> dict[str, npt.NDArray[Any]]:
    rng = np.random.default_rng(seed)
    committee = rng.dirichlet(np.ones(c) * 0.5, size=(m, n)).astype(dtype)
    probabilities = rng.dirichlet(np.ones(c) * 0.5, size=n).astype(dtype)
    # Ties: repeated rows make equal scores, which must break by index as the unary call does.
    probabilities[n // 2 :: 7] = probabilities[0]
    committee[:, n // 3 :: 5] = committee[:, :1]
    return {"probabilities": probabilities, "committee": committee}


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("step", [1, 7, 64, 1000])
def test_every_row_wise_strategy_streamed_equals_unary(dtype: Any, step: int) -> None:
    arrays = pool(301, 4, 3, dtype)
    message = header(ROW_WISE, 10)
    assert streamed(message, arrays, step) == unary(message, arrays)


@pytest.mark.parametrize("exclude_at", ["first", "spread", "last"])
@pytest.mark.parametrize("k", [1, 5, 40])
def test_exclude_anywhere_in_the_stream_equals_unary(exclude_at: str, k: int) -> None:
    arrays = pool(400, 3, 2, np.float32, seed=k)
    rng = np.random.default_rng(k)
    exclude = rng.choice(400, size=150).tolist()  # with repeats, as the unary call allows
    message = header(ROW_WISE, k, exclude=exclude)
    assert streamed(message, arrays, 37, exclude_at) == unary(message, arrays)


@pytest.mark.parametrize("exclude_at", ["first", "spread", "last"])
@pytest.mark.parametrize("k", [3, 6000])
def test_many_blocks_with_full_rankings_equal_unary(exclude_at: str, k: int) -> None:
    """Past several scoring blocks (4,096 rows of [n, 128] float64), so the rankings fill,
    rows wait to be ranked in, and exclude entries arrive before and after their rows."""
    rng = np.random.default_rng(k)
    n = 24_000
    probabilities = rng.dirichlet(np.ones(128) * 0.2, size=n)
    probabilities[n // 2 :: 11] = probabilities[3]  # ties across blocks
    exclude = rng.choice(n, size=300).tolist()
    message = header(["entropy", "margin", "random"], k, exclude=exclude)
    arrays = {"probabilities": probabilities}
    assert streamed(message, arrays, 2_000, exclude_at) == unary(message, arrays)


def test_logits_costs_clamp_k_and_temperature_equal_unary() -> None:
    rng = np.random.default_rng(3)
    arrays = {
        "logits": rng.normal(size=(250, 5)).astype(np.float32),
        "committee_logits": rng.normal(size=(4, 250, 5)),
        "costs": rng.uniform(0.5, 3.0, size=250),
    }
    exclude = list(range(0, 250, 2))
    message = header(ROW_WISE, 200, exclude=exclude, clamp_k=True, temperature=1.7)
    assert streamed(message, arrays, 33) == unary(message, arrays)


def test_tensors_out_of_step_equal_unary() -> None:
    arrays = pool(500, 3, 2, np.float64, seed=4)
    arrays["costs"] = np.arange(1, 501, dtype=np.float64)
    message = header(ROW_WISE, 12)
    steps = {"probabilities": 9, "committee": 50, "costs": 500}
    assert streamed(message, arrays, steps) == unary(message, arrays)


def test_random_drawn_in_chunks_is_the_whole_draw() -> None:
    whole = np.random.default_rng(11).random(1000)
    rng = np.random.default_rng(11)
    parts = np.concatenate([rng.random(size) for size in (1, 10, 333, 656)])
    assert np.array_equal(parts, whole)


def test_late_exclude_of_more_selected_rows_than_the_slack_is_refused() -> None:
    n = 400_000  # past two scoring blocks of [n, 3] float64 (block_rows: 174,762)
    probabilities = np.random.default_rng(0).dirichlet(np.ones(3), size=n)
    entropy = -(probabilities * np.log(probabilities)).sum(1)
    order = np.lexsort((np.arange(n), -entropy))
    exclude = order[: 2 * MIN_SLACK + 5].tolist()  # more than the ranking holds past k
    message = header(["entropy"], 5, exclude=exclude)
    with pytest.raises(InvalidArgument) as caught:
        streamed(message, {"probabilities": probabilities}, 100_000, "last")
    assert caught.value.field == "exclude"
    # The same exclude sent before the rows is exact.
    got = streamed(message, {"probabilities": probabilities}, 100_000, "first")
    assert got == unary(message, {"probabilities": probabilities})


def test_errors_match_the_unary_call() -> None:
    arrays = pool(100, 3, 2, np.float32)
    for message in (
        header(["entropy"], 101),  # k past the candidates
        header(["entropy"], 5, exclude=[100]),  # outside the pool
        header(["entropy"], 5, exclude=list(range(100))),  # nothing left
    ):
        with pytest.raises(InvalidArgument) as from_unary:
            unary(message, arrays)
        with pytest.raises(InvalidArgument) as from_stream:
            streamed(message, arrays, 30)
        assert str(from_stream.value) == str(from_unary.value)
    bad = dict(arrays)
    bad["probabilities"] = bad["probabilities"].copy()
    bad["probabilities"][40] = [0.5, 0.5, 0.5]
    with pytest.raises(InvalidArgument) as caught:
        streamed(header(["entropy"], 5), bad, 30)
    assert caught.value.field == "probabilities"
    uneven = {"probabilities": arrays["probabilities"], "committee": arrays["committee"][:, :90]}
    with pytest.raises(InvalidArgument, match="same pool size"):
        streamed(header(["entropy", "bald"], 5), uneven, {"probabilities": 30, "committee": 30})


def test_only_row_wise_requests_are_planned() -> None:
    probs = chunk(header(["entropy"], 3), probabilities=np.full((4, 2), 0.5)).tensors
    assert plan(header(["entropy"], 3), probs, 1 << 20) is not None
    assert plan(header(["core_set"], 3), probs, 1 << 20) is None  # a batch strategy
    assert plan(header(["entropy"], 3, budget=2.0), probs, 1 << 20) is None
    assert plan(header(["bald"], 3), probs, 1 << 20) is None  # needs a committee not sent
    with_embeddings = chunk(
        header(["entropy"], 3), probabilities=np.full((4, 2), 0.5), embeddings=np.ones((4, 2))
    ).tensors
    assert plan(header(["entropy"], 3), with_embeddings, 1 << 20) is None
    with pytest.raises(InvalidArgument):
        plan(header(["no_such_strategy"], 3), probs, 1 << 20)


def test_memory_held_is_one_chunk_and_the_rankings() -> None:
    """What the scorer keeps between chunks does not grow with the rows streamed past."""
    message = header(["entropy", "margin"], 10)
    calls = plan(message, chunk(message, probabilities=np.full((4, 2), 0.5)).tensors, 1 << 28)
    assert calls is not None
    scorer = StreamScorer(message, calls, 10_000, MAX, 1 << 28, lambda: None)
    rng = np.random.default_rng(1)
    held = []
    for i in range(50):
        part = rng.dirichlet(np.ones(4), size=2000).astype(np.float32)
        scorer.feed(chunk(message if i == 0 else pb.SelectQueriesRequest(), probabilities=part), i)
        held.append(sum(r.nbytes for r in scorer._rankings))
    # Two rankings, each at most k + slack rows ranked and fewer than that pending.
    assert max(held) < 2 * 2 * (10 + MIN_SLACK) * 16
    results, n = scorer.finish(lambda *_: None)
    assert n == 100_000 and [len(r.indices) for r in results] == [10, 10]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unaligned_rows_are_scored_from_an_aligned_copy_equal_unary(dtype: Any) -> None:
    """Rows whose bytes sit at an unaligned offset of the message (where the protobuf framing
    put them) are copied to the scratch buffer; rows held past their chunk get their own
    copy, so the next chunk's copy does not overwrite them."""
    arrays = pool(2000, 4, 2, dtype, seed=9)
    message = header(["entropy", "margin", "bald"], 7)
    calls = plan(message, chunk(message, **{k: v[:1] for k, v in arrays.items()}).tensors, 1 << 28)
    assert calls is not None
    scorer = StreamScorer(message, calls, MAX, MAX, 1 << 28, lambda: None)
    step = 150
    for i, start in enumerate(range(0, 2000, step)):
        part = chunk(
            message if i == 0 else pb.SelectQueriesRequest(),
            probabilities=arrays["probabilities"][start : start + step],
            committee=arrays["committee"][:, start : start + step],
        )
        for offset, name in ((1 + i % 3, "probabilities"), (5, "committee")):
            raw = part.tensors[name]
            moved = bytearray(offset) + bytes(raw.raw_data)
            raw.raw_data = memoryview(moved)[offset:]
        scorer.feed(part, i)
    assert set(scorer._scratch) == {"probabilities", "committee"}
    results, n = scorer.finish(lambda *_: None)
    from labelwise_server.grpc.codec import encode_response

    got = encode_response(results, n).SerializeToString(deterministic=True)
    assert got == unary(message, arrays)
