"""Score a streamed pool while it arrives: O(chunk + k) memory, whatever n.

A SelectQueriesStream whose strategies are all row-wise (every strategy with a block score,
and random) over class probabilities or a committee is not reassembled: each chunk is
decoded, checked and scored as it arrives, and each strategy keeps a running ranking of the
best rows so far (ranking.rank: score descending, then index ascending, as the unary call
orders). Rows are scored in the blocks the unary call cuts (about 4 MB of rows: the held
rows wait for a whole block), so each score is the one the unary call computes, and the
answer is the unary call's, byte for byte. A stream larger than the unary call may hold
(--max-pool-elements) scores what it holds whenever that limit would be passed.

What is held: the rows of one tensor that arrived before the rows of another tensor they go
with (the element limit, --max-pool-elements, bounds them), the running rankings (k + slack
rows per strategy), and the exclude list. --max-stream-elements bounds what may flow past.

exclude may come in any chunk. Entries naming rows not received yet are applied as those
rows arrive. Entries naming rows already scored take them out of the running rankings, which
hold `slack` rows beyond k for them; a stream that excludes, after their rows arrived, more
of the rows it would have selected than that slack ends with INVALID_ARGUMENT (send exclude
before the rows: the clients do).

Requests that cannot be scored this way (model mode, a budget, a batch or whole-pool
strategy, other pool inputs in the first chunk with rows) are reassembled as before
(labelwise_server.grpc.codec.assemble) and go through the work process.
"""

import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from labelwise.tensors import STREAM_AXIS
from labelwise.v1 import query_selection_pb2 as pb
from labelwise_server import reasons
from labelwise_server.checks import check_class_shape
from labelwise_server.decode.costs import check_costs
from labelwise_server.decode.fields import Fields
from labelwise_server.decode.probabilities import class_scores
from labelwise_server.errors import InvalidArgument
from labelwise_server.request import MAX_STRATEGIES, StrategyCall
from labelwise_server.selection import BLOCK_BYTES, Result
from labelwise_server.strategies._types import FloatArray, Input, IntArray, Pool, StopCheck
from labelwise_server.strategies.intermediates import block_rows, pool_blocks
from labelwise_server.strategies.ranking import top_k
from labelwise_server.tensors import (
    ALL_DTYPES,
    RawTensor,
    WireRequest,
    decode_tensor,
    element_count,
)
from labelwise_server.validation import (
    check_exclude,
    check_response_size,
    check_temperature,
    strategy_calls,
    task_k,
)

# Pool tensors a row-wise strategy reads, and the pair each belongs to.
SCORED = {
    "probabilities": "probabilities",
    "logits": "probabilities",
    "committee": "committee",
    "committee_logits": "committee",
}
# Held row for row with the scored tensors (only the selected rows' costs are kept).
ALIGNED = (*SCORED, "costs")
# Labeled-set tensors row-wise strategies do not read: checked for dtype and size, not kept.
IGNORED = ("labeled_embeddings", "labeled_targets")
# Rows beyond k each running ranking keeps for exclude entries that name rows already scored.
MIN_SLACK = 4096
RANDOM = "random"

Observe = Callable[[str, float], None]
Chunks = AsyncIterator[tuple[int, WireRequest]]  # a stream's chunks with their positions


@dataclass(frozen=True)
class RowWiseStream:
    """A stream to score as it arrives (plan said so)."""

    header: pb.SelectQueriesRequest
    calls: tuple[StrategyCall, ...]
    chunks: Chunks  # every chunk, from the first


def plan(
    header: pb.SelectQueriesRequest, tensors: Mapping[str, RawTensor], max_response_bytes: int
) -> tuple[StrategyCall, ...] | None:
    """The strategy calls when a stream can be scored as it arrives (its first chunk with
    rows carries these tensors), or None: reassemble it. InvalidArgument for a header the
    unary call refuses before reading any tensor."""
    if len(header.strategies) > MAX_STRATEGIES or len(header.models) or header.HasField("budget"):
        return None
    names = set(tensors)
    if not names & set(SCORED) or names - set(ALIGNED) - set(IGNORED):
        return None
    if "probabilities" in names and "logits" in names:
        return None
    if "committee" in names and "committee_logits" in names:
        return None
    calls = strategy_calls(header, max_response_bytes)
    present = {SCORED[name] for name in names if name in SCORED}
    for call in calls:
        if call.strategy.name == RANDOM:
            continue
        if call.strategy.block_score is None:
            return None
        needs = call.strategy.inputs(call.params)
        if Input.PROBABILITIES in needs and "probabilities" not in present:
            return None
        if Input.COMMITTEE in needs and "committee" not in present:
            return None
    check_temperature(header)
    return calls


@dataclass
class _Ranking:
    """A running ranking of the best rows so far, with each row's cost: `indices`, `scores`
    and `costs` are ranked (best first, at most `keep` rows); rows that may belong in it
    wait in `pending` until about `keep` of them gather (flush() ranks them in), so a block
    costs a comparison with the ranking's last row rather than a sort."""

    keep: int
    indices: IntArray = field(default_factory=lambda: np.empty(0, np.int64))
    scores: FloatArray = field(default_factory=lambda: np.empty(0, np.float64))
    costs: FloatArray = field(default_factory=lambda: np.empty(0, np.float64))
    pending: list[tuple[IntArray, FloatArray, FloatArray]] = field(default_factory=list)
    pending_rows: int = 0
    seconds: float = 0.0
    best_discarded: tuple[float, int] | None = None  # (score, index) of the best row left out

    def add(self, indices: IntArray, scores: FloatArray, costs: FloatArray) -> None:
        """Rows that may belong in the ranking (of higher pool indices than every row
        added before)."""
        self.pending.append((indices, scores, costs))
        self.pending_rows += indices.shape[0]
        if self.pending_rows >= self.keep:
            self.flush()

    def flush(self) -> None:
        """Rank the pending rows in, keeping the best `keep`."""
        if not self.pending:
            return
        all_indices = np.concatenate([self.indices, *(p[0] for p in self.pending)])
        all_scores = np.concatenate([self.scores, *(p[1] for p in self.pending)])
        all_costs = np.concatenate([self.costs, *(p[2] for p in self.pending)])
        self.pending, self.pending_rows = [], 0
        order = np.lexsort((all_indices, -all_scores))  # as ranking.rank orders
        if order.shape[0] > self.keep:
            self.discard(float(all_scores[order[self.keep]]), int(all_indices[order[self.keep]]))
            order = order[: self.keep]
        self.indices = all_indices[order].astype(np.int64, copy=False)
        self.scores = all_scores[order].astype(np.float64, copy=False)
        self.costs = all_costs[order]

    @property
    def full(self) -> bool:
        """The ranked rows number keep: a row ranking after the last of them cannot enter."""
        return int(self.indices.shape[0]) == self.keep

    def discard(self, score: float, index: int) -> None:
        """Note a row left out of the ranking: the best such row bounds what stays exact."""
        if self.best_discarded is None or _better((score, index), self.best_discarded):
            self.best_discarded = (score, index)

    def exact(self, k: int) -> bool:
        """Whether the first k rows are the k best of every row not excluded."""
        self.flush()
        if self.best_discarded is None:
            return True
        if self.indices.shape[0] < k:
            return False
        return _better((float(self.scores[k - 1]), int(self.indices[k - 1])), self.best_discarded)

    def drop(self, excluded: IntArray) -> None:
        self.flush()
        keep = ~np.isin(self.indices, excluded)
        self.indices, self.scores, self.costs = (
            self.indices[keep],
            self.scores[keep],
            self.costs[keep],
        )

    @property
    def nbytes(self) -> int:
        """Bytes of the indices and scores held, ranked and pending."""
        pending = sum(p[0].nbytes + p[1].nbytes for p in self.pending)
        return self.indices.nbytes + self.scores.nbytes + pending


def _better(a: tuple[float, int], b: tuple[float, int]) -> bool:
    """a ranks before b: higher score, then lower index."""
    return a[0] > b[0] or (a[0] == b[0] and a[1] < b[1])


class StreamScorer:
    """One stream's running state; feed() each chunk in order, then finish()."""

    def __init__(
        self,
        header: pb.SelectQueriesRequest,
        calls: tuple[StrategyCall, ...],
        max_held_elements: int,
        max_stream_elements: int,
        max_response_bytes: int,
        stop: StopCheck,
    ) -> None:
        self._header = header
        self._calls = calls
        self._temperature = check_temperature(header)
        self._max_held = max_held_elements
        self._max_stream = max_stream_elements
        self._max_response_bytes = max_response_bytes
        self._stop = stop
        k = max(header.k, 0)
        self._slack = max(k, MIN_SLACK)
        self._keep = k + self._slack
        self._rankings = [_Ranking(self._keep) for _ in calls]
        self._random = (
            np.random.default_rng(header.seed)
            if any(call.strategy.name == RANDOM for call in calls)
            else None
        )
        self._held: dict[str, list[npt.NDArray[Any]]] = {}  # decoded rows not scored yet
        self._held_rows: dict[str, int] = {}
        self._received: dict[str, int] = {}  # rows received per aligned tensor
        self._elements: dict[str, int] = {}  # elements received per tensor
        self._shapes: dict[str, tuple[int, list[int]]] = {}  # name -> (dtype, shape of chunk 0)
        self._scored = 0  # rows [0, scored) are ranked
        self._exclude: list[IntArray] = []  # the exclude lists in order
        self._excluded = np.empty(0, np.int64)  # sorted unique entries >= 0
        self.wire_bytes = 0
        self._classes: dict[str, int] = {}
        self._step: int | None = None  # rows per scored block, once the first rows arrived
        self._scratch: dict[str, npt.NDArray[np.uint8]] = {}  # aligned copies (_aligned)

    def feed(self, chunk: WireRequest, index: int) -> None:
        """Check chunk (the index-th of the stream), and score the rows it completes."""
        self._stop()
        self.wire_bytes += chunk.wire_bytes
        if len(chunk.header.exclude):
            self._add_exclude(np.asarray(chunk.header.exclude, dtype=np.int64))
        for name, raw in chunk.tensors.items():
            where = f"chunks[{index}].chunk.{name}"
            if name not in ALIGNED and name not in IGNORED:
                raise InvalidArgument(
                    where,
                    "must come in the stream's first chunk with rows, or not at all: this "
                    "stream is scored as it arrives (its first rows carried only "
                    f"{', '.join(sorted(self._received))})",
                )
            self._check_chunk(name, raw, where)
            if name in IGNORED:
                continue
            if name not in self._received:
                if self._scored > 0:
                    raise InvalidArgument(
                        where,
                        "must start in the stream's first chunk with rows: the rows before "
                        "it are already scored",
                    )
                self._received[name] = 0
            rows = self._decode(name, raw)
            self._received[name] += rows.shape[STREAM_AXIS[name]]
            self._held.setdefault(name, []).append(rows)
            self._held_rows[name] = self._held_rows.get(name, 0) + rows.shape[STREAM_AXIS[name]]
        chunk.release()
        self._score_ready()
        self._own_held()

    def finish(self, observe: Observe) -> tuple[list[Result], int]:
        """The results, as the unary call gives them, and the pool's size n."""
        self._stop()
        if len(set(self._received.values())) == 1:
            self._score_ready(final=True)
        sizes = {name: rows for name, rows in self._received.items()}
        first_name, n = next(iter(sizes.items()))
        for name, rows in sizes.items():
            if rows != n:
                raise InvalidArgument(
                    f"{name}.shape",
                    f"must have the same pool size n as {first_name} ({n}); got {rows}",
                )
        if n == 0:
            raise InvalidArgument(
                f"{first_name}.shape", "must describe a non-empty pool; got n = 0"
            )
        exclude = np.concatenate(self._exclude) if self._exclude else np.empty(0, np.int64)
        check_exclude(exclude, n)
        unique_excluded = int(self._excluded.shape[0])
        candidates = n - unique_excluded
        k = task_k(self._header, n, candidates)
        check_response_size(self._calls, k, self._max_response_bytes)
        results = []
        for call, ranking in zip(self._calls, self._rankings, strict=True):
            if not ranking.exact(k):
                raise InvalidArgument(
                    "exclude",
                    f"must name rows before they arrive in a stream scored as it arrives: "
                    f"at most {self._slack} of the rows it would select may be excluded "
                    "after they arrived; send exclude in the first chunks (the clients do)",
                    reason=reasons.INVALID_FIELD,
                )
            indices, scores = ranking.indices[:k], ranking.scores[:k]
            if "costs" in self._received:
                cost = float(ranking.costs[:k].sum())
            else:
                cost = float(indices.shape[0])
            observe(call.strategy.name, ranking.seconds)
            results.append(
                Result(call.strategy.name, call.params, indices, scores, cost, candidates)
            )
        return results, n

    def _check_chunk(self, name: str, raw: RawTensor, where: str) -> None:
        axis = STREAM_AXIS[name]
        count = element_count(raw.shape, where, self._max_held)
        total = self._elements.get(name, 0) + count
        if total > self._max_stream:
            raise InvalidArgument(
                f"{where}.shape",
                f"the stream's chunks of {name} must hold at most {self._max_stream} elements "
                f"in all (the server's limit, --max-stream-elements); got {total} so far",
                reason=reasons.TOO_MANY_ELEMENTS,
            )
        self._elements[name] = total
        first = self._shapes.setdefault(name, (raw.dtype, list(raw.shape)))
        if raw.dtype != first[0]:
            raise InvalidArgument(
                f"{name}.dtype", f"must be the same in every chunk; {where} differs from chunk 0"
            )
        if len(raw.shape) <= axis:
            raise InvalidArgument(
                f"{name}.shape", f"must have a pool axis {axis} to split along; got {raw.shape}"
            )
        shape, first_shape = list(raw.shape), first[1]
        if len(shape) != len(first_shape) or (
            shape[:axis] + shape[axis + 1 :] != first_shape[:axis] + first_shape[axis + 1 :]
        ):
            raise InvalidArgument(
                f"{name}.shape",
                f"chunks must agree on every axis but the pool axis {axis}; "
                f"the first is {first_shape}, {where} is {shape}",
            )
        if name in IGNORED:
            decode_tensor(raw, name, self._max_held, allow_int=name == "labeled_targets")

    def _decode(self, name: str, raw: RawTensor) -> npt.NDArray[Any]:
        count = element_count(raw.shape, name, self._max_held)
        if self._held_elements(name) + count > self._max_held:
            # Past what a unary call may hold: score the held rows as one partial block.
            self._score_ready(final=True)
        if self._held_elements(name) + count > self._max_held:
            raise InvalidArgument(
                f"{name}.shape",
                f"the server holds at most {self._max_held} elements of {name} before the "
                "rows of the stream's other tensors arrive (--max-pool-elements); send the "
                "tensors' rows in step",
                reason=reasons.TOO_MANY_ELEMENTS,
            )
        fields = Fields({name: self._aligned(name, raw)}, self._max_held)
        if name == "costs":
            costs = fields.get(name, allow_int=True)
            assert costs is not None
            return check_costs(costs)
        pair = SCORED[name]
        ndim = 2 if pair == "probabilities" else 3
        probs_name, logits_name = (
            ("probabilities", "logits") if ndim == 2 else ("committee", "committee_logits")
        )
        values = class_scores(
            fields, probs_name, logits_name, ndim=ndim, temperature=self._temperature
        )
        assert values is not None
        check_class_shape(values, name, "[n, c]" if ndim == 2 else "[m, n, c]")
        self._classes.setdefault(pair, int(values.shape[-1]))
        if len(set(self._classes.values())) > 1 or self._classes[pair] != values.shape[-1]:
            raise InvalidArgument(
                f"{name}.shape",
                "must have the same number of classes c as the stream's other class tensor; "
                f"got {self._classes}",
            )
        return np.asarray(values)

    def _aligned(self, name: str, raw: RawTensor) -> RawTensor:
        """raw, its bytes copied to this stream's scratch buffer for name when they are not
        aligned for its dtype. A tensor's bytes sit wherever the protobuf framing puts them,
        and NumPy runs every kernel over unaligned rows through small aligned buffers (and
        copies them whole for BLAS): one copy first costs less than a check and a score on
        them (2.0 → 1.3 ms for a 4 MiB chunk of entropy). The buffer is reused from chunk
        to chunk (fresh memory would cost a page fault per 4 KiB); rows still held when a
        chunk is done get their own copy (_own_held). It holds at most one chunk, which
        the element limit bounds."""
        dtype = ALL_DTYPES.get(raw.dtype)
        if dtype is None or dtype.itemsize == 1 or raw.parts is not None:
            return raw  # decode_tensor refuses it, or nothing to align
        data = np.frombuffer(raw.raw_data, np.uint8)
        if data.ctypes.data % dtype.itemsize == 0:
            return raw
        scratch = self._scratch.get(name)
        if scratch is None or scratch.shape[0] < data.shape[0]:
            scratch = self._scratch[name] = np.empty(data.shape[0], np.uint8)
        copy = scratch[: data.shape[0]]
        copy[...] = data
        return RawTensor(raw.dtype, raw.shape, memoryview(copy))  # type: ignore[arg-type]

    def _own_held(self) -> None:
        """Held rows that are views of a scratch buffer, copied out of it (the next chunk
        reuses it)."""
        for name, scratch in self._scratch.items():
            parts = self._held.get(name, [])
            for i, part in enumerate(parts):
                if np.may_share_memory(part, scratch):
                    parts[i] = part.copy()

    def _held_elements(self, name: str) -> int:
        return sum(part.size for part in self._held.get(name, []))

    def _add_exclude(self, exclude: IntArray) -> None:
        self._exclude.append(exclude)
        valid = exclude[exclude >= 0]
        self._excluded = np.union1d(self._excluded, valid)
        late = np.unique(valid[valid < self._scored])
        if late.shape[0]:
            for ranking in self._rankings:
                ranking.drop(late)

    def _take(self, name: str, rows: int) -> npt.NDArray[Any]:
        """The first rows held of name (along its pool axis), no longer held."""
        axis = STREAM_AXIS[name]
        parts = self._held[name]
        taken: list[npt.NDArray[Any]] = []
        need = rows
        while need:
            part = parts[0]
            size = part.shape[axis]
            if size <= need:
                taken.append(part)
                parts.pop(0)
                need -= size
            else:
                cut: list[slice] = [slice(None)] * part.ndim
                cut[axis] = slice(0, need)
                taken.append(part[tuple(cut)])
                cut[axis] = slice(need, None)
                parts[0] = part[tuple(cut)]
                need = 0
        self._held_rows[name] -= rows
        return taken[0] if len(taken) == 1 else np.concatenate(taken, axis=axis)

    def _score_ready(self, final: bool = False) -> None:
        """Score the rows every tensor has delivered, in the blocks the unary call cuts
        (strategies.intermediates.block_rows), so each score is computed on the same block
        of rows as there: NumPy's kernels may round differently on other block shapes.
        The last, partial block waits for the end of the stream (final)."""
        ready = min(self._received.values()) - self._scored if self._received else 0
        if ready <= 0:
            return
        if self._step is None:
            self._step = block_rows(self._probe(), BLOCK_BYTES)
        if not final:
            ready -= ready % self._step
            if ready == 0:
                return
        arrays = {name: self._take(name, ready) for name in self._received}
        start = self._scored
        probabilities = arrays.get("probabilities", arrays.get("logits"))
        committee = arrays.get("committee", arrays.get("committee_logits"))
        costs = arrays.get("costs")
        pool = Pool(n=ready, probabilities=probabilities, committee=committee)
        lo, hi = np.searchsorted(self._excluded, [start, start + ready])
        skip = self._excluded[lo:hi] - start
        for i, call in enumerate(self._calls):
            if call.strategy.name != RANDOM:
                continue
            started = time.perf_counter()
            assert self._random is not None
            self._rank(i, start, self._random.random(ready), skip, costs)
            self._rankings[i].seconds += time.perf_counter() - started
        block_calls = [(i, c) for i, c in enumerate(self._calls) if c.strategy.block_score]
        for block_start, block_end, block in pool_blocks(pool, BLOCK_BYTES):
            self._stop()
            block_skip = skip[(skip >= block_start) & (skip < block_end)] - block_start
            block_costs = None if costs is None else costs[block_start:block_end]
            for i, call in block_calls:
                started = time.perf_counter()
                assert call.strategy.block_score is not None
                scores = call.strategy.block_score(block, call.params)
                self._rank(i, start + block_start, scores, block_skip, block_costs)
                self._rankings[i].seconds += time.perf_counter() - started
        self._scored += ready

    def _probe(self) -> Pool:
        """A one-row pool of the held tensors' dtypes and widths (for block_rows)."""
        first = {name: parts[0] for name, parts in self._held.items() if parts}
        probabilities = first.get("probabilities", first.get("logits"))
        committee = first.get("committee", first.get("committee_logits"))
        return Pool(n=1, probabilities=probabilities, committee=committee)

    def _rank(
        self,
        i: int,
        start: int,
        scores: FloatArray,
        skip: IntArray,
        costs: FloatArray | None,
    ) -> None:
        """Add rows [start, start + len(scores)), but those at positions skip, to ranking i."""
        rows = scores.shape[0]
        ranking = self._rankings[i]
        if ranking.full:
            # A full ranking's last row ranks before every row of this block that does not
            # score strictly more (these rows all have higher indices): only those can enter.
            # The rows passed over rank after it, so it stands for them as the best discarded
            # (a bound that is never better than the truth: exact() stays safe).
            positions = np.flatnonzero(scores > ranking.scores[-1])
            if skip.shape[0]:
                positions = np.setdiff1d(positions, skip, assume_unique=True)
            if positions.shape[0] < rows - skip.shape[0]:
                ranking.discard(float(ranking.scores[-1]), int(ranking.indices[-1]))
        elif skip.shape[0]:
            keep = np.ones(rows, dtype=bool)
            keep[skip] = False
            positions = np.flatnonzero(keep)
        else:
            positions = np.arange(rows, dtype=np.int64)
        if positions.shape[0] == 0:
            return
        chosen, chosen_scores = positions + start, scores[positions]
        if chosen.shape[0] > self._keep:
            chosen, chosen_scores = top_k(chosen_scores, self._keep + 1, chosen)
            ranking.discard(float(chosen_scores[-1]), int(chosen[-1]))
            chosen, chosen_scores = chosen[:-1], chosen_scores[:-1]
        chosen_costs = np.empty(chosen.shape[0]) if costs is None else costs[chosen - start]
        ranking.add(chosen, chosen_scores.astype(np.float64, copy=False), chosen_costs)
