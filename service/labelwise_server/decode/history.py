"""SelectQueriesRequest.history: the caller's past rounds, for the "auto" strategy.

Sizes are checked from the message's lengths before any array is made; then each round's
strategy names, labels and (optional) probabilities. The label range against the pool's
classes is checked here when the request carries probabilities, and again by auto itself
(model mode learns c only once the models have run).
"""

from collections.abc import Sequence

import numpy as np

from labelwise.v1 import history_pb2
from labelwise_server.errors import InvalidArgument
from labelwise_server.strategies._types import History, HistoryRound

MAX_ROUNDS = 1000
MAX_ITEMS = 100_000
MAX_PROBABILITY_VALUES = 10_000_000
# Rows of probabilities must sum to 1 within this (as SelectQueriesRequest.probabilities).
_ROW_SUM_TOLERANCE = 1e-3


def decode_history(
    rounds: Sequence[history_pb2.SelectionRound], known: frozenset[str], c: int | None
) -> History | None:
    """The validated history (None when empty). known: the strategy names a round may name;
    c: the pool's number of classes, when known."""
    if not rounds:
        return None
    if len(rounds) > MAX_ROUNDS:
        raise InvalidArgument(
            "history", f"must have at most {MAX_ROUNDS} rounds; got {len(rounds)}"
        )
    items = sum(len(r.labels) for r in rounds)
    if items > MAX_ITEMS:
        raise InvalidArgument(
            "history", f"must hold at most {MAX_ITEMS} labeled items in all; got {items}"
        )
    values = sum(len(r.probabilities) for r in rounds)
    if values > MAX_PROBABILITY_VALUES:
        raise InvalidArgument(
            "history",
            f"must hold at most {MAX_PROBABILITY_VALUES} probabilities in all; got {values}",
        )
    return History(tuple(_round(r, i, known, c) for i, r in enumerate(rounds)))


def _round(
    message: history_pb2.SelectionRound, i: int, known: frozenset[str], c: int | None
) -> HistoryRound:
    field = f"history[{i}]"
    b = len(message.labels)
    if b == 0:
        raise InvalidArgument(f"{field}.labels", "must hold at least one label; got none")
    names = tuple(message.strategies)
    if len(names) not in (1, b):
        raise InvalidArgument(
            f"{field}.strategies",
            f"must hold one name per label ({b}) or a single name for all; got {len(names)}",
        )
    for j, name in enumerate(names):
        if name and name not in known:
            raise InvalidArgument(
                f"{field}.strategies[{j}]",
                "must be a strategy name of ListStrategies other than auto, or empty for "
                f"items no strategy picked; got {name!r}",
            )
    labels = np.asarray(message.labels, dtype=np.int64)
    bad = np.flatnonzero(
        (labels < 0) | (labels >= (c if c is not None else np.iinfo(np.int64).max))
    )
    if bad.shape[0]:
        j = int(bad[0])
        allowed = f"[0, {c}) (the classes of probabilities)" if c is not None else ">= 0"
        raise InvalidArgument(f"{field}.labels[{j}]", f"must be in {allowed}; got {labels[j]}")
    probabilities = None
    if len(message.probabilities):
        probabilities = _probabilities(message.probabilities, b, c, f"{field}.probabilities")
    return HistoryRound(names, labels, probabilities)


def _probabilities(values: Sequence[float], b: int, c: int | None, field: str) -> np.ndarray:
    flat = np.asarray(values, dtype=np.float64)
    width = c if c is not None else flat.shape[0] // b
    if width < 2 or flat.shape[0] != b * width:
        expected = f"{b} × {c}" if c is not None else f"{b} × c with c >= 2"
        raise InvalidArgument(
            field, f"must hold {expected} values (one row per label); got {flat.shape[0]}"
        )
    rows = flat.reshape(b, width)
    if not np.isfinite(rows).all() or (rows < 0).any():
        raise InvalidArgument(field, "must all be finite and >= 0")
    sums = rows.sum(axis=1)
    off = np.flatnonzero(np.abs(sums - 1.0) > _ROW_SUM_TOLERANCE)
    if off.shape[0]:
        j = int(off[0])
        raise InvalidArgument(field, f"row {j} must sum to 1 within 1e-3; got {sums[j]:.6g}")
    return rows
