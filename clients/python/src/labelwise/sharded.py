"""One pool over several replicas: split it, call them in parallel, merge the answers.

from labelwise.sharded import ShardedClient
with ShardedClient(["10.0.0.1:50051", "10.0.0.2:50051"]) as client:  # or "dns:///svc:50051"
    picks = client.select(strategies=["entropy", "core_set"], k=100, probabilities=p, embeddings=e)

The pool (every tensor with a pool axis) is cut into contiguous shards, one per replica.

- Strategies that are not batch strategies: each replica returns its shard's top k, and the
  merge keeps the k best by score, then pool index, as one server ranks them. For the
  row-wise scores (uncertainty, committee, Bayesian) the answer is one server's, byte for
  byte: shards are cut at multiples of the server's scoring block (SCORING_BLOCK_BYTES of
  probability and committee rows), so every score is computed on the same rows as there.
  Exceptions: random draws its scores per shard (the same seed gives another uniform
  sample), and information_density's density is each shard's own.
- Batch strategies (core_set, badge, typiclust, cluster_margin, ...): each replica selects
  `oversample * k` items of its shard exactly, and one replica selects the final k from the
  union of those rows: an approximation (for k-center greedy this is the two-round scheme
  of Malkomes et al. 2015, within a constant factor of one-server greedy); bench/scale.py
  measures each objective against the exact run.
- badge (WEIGHTED_MERGE) is merged as a weighted summary: each replica also reports what
  each of its picks stands for (report_weights: the total weight of its shard's items
  nearest that pick in gradient space, StrategyResult.represented_weights), and the final
  badge runs over the union with those item_weights, drawing by weight × D². This is the
  k-means|| composition of Bahmani et al. (2012): an unweighted final D² sampling over
  points that were already D²-sampled favours the outliers among them.

A budget walk needs the whole ranking, so ShardedClient refuses budget.
"""

import ipaddress
import socket
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import numpy.typing as npt

from labelwise.client import Client, ParamValue, Selection, StrategyArg
from labelwise.tensors import POOL_AXIS

# Per-strategy oversampling, where a strategy needs another than the client's default.
OVERSAMPLE_FOR: Mapping[str, int] = {}
# Batch strategies merged as a weighted summary: shards run them with report_weights and
# the final call sends each union row's represented weight as item_weights.
WEIGHTED_MERGE = frozenset({"badge"})

# The server scores row-wise strategies in blocks of about this many bytes of probability
# and committee rows (labelwise_server.selection.BLOCK_BYTES, at least 1024 rows each).
SCORING_BLOCK_BYTES = 1 << 22
_MIN_BLOCK_ROWS = 1024
_CLASS_TENSORS = {"probabilities": 0, "logits": 0, "committee": 1, "committee_logits": 1}


def resolve(targets: str | Sequence[str]) -> list[str]:
    """host:port addresses of every replica: a list is taken as is; one name (optionally
    dns:///name:port) is resolved to every address it has, as a Kubernetes headless Service
    resolves to its ready pods (sorted, so every client cuts the same shards)."""
    if not isinstance(targets, str):
        return list(targets)
    target = targets.removeprefix("dns:///").removeprefix("dns:")
    host, _, port = target.rpartition(":")
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
        return [targets]
    except ValueError:
        pass
    infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
    addresses = sorted({str(info[4][0]) for info in infos})
    return [f"[{a}]:{port}" if ":" in a else f"{a}:{port}" for a in addresses]


def block_rows(inputs: dict[str, npt.NDArray[Any]]) -> int:
    """Rows per scoring block the server cuts for these inputs (as the server decodes them:
    float16 widened to float32, any other non-float64 dtype sent as float64)."""
    row_bytes = 0
    for name, axis in _CLASS_TENSORS.items():
        array = inputs.get(name)
        if array is None:
            continue
        itemsize = 4 if array.dtype in (np.float16, np.float32) else 8
        row_bytes += array.size // max(array.shape[axis], 1) * itemsize
    return max(_MIN_BLOCK_ROWS, SCORING_BLOCK_BYTES // max(row_bytes, 1))


def shard_bounds(n: int, shards: int, block: int) -> list[tuple[int, int]]:
    """Contiguous [start, end) of each shard: about n / shards rows, cut at multiples of
    block (the last shard takes the rest; shards past the end are empty and dropped)."""
    blocks = -(-n // block)
    per = -(-blocks // shards)
    bounds = []
    for s in range(shards):
        start, end = min(n, s * per * block), min(n, (s + 1) * per * block)
        if end > start:
            bounds.append((start, end))
    return bounds


class ShardedClient:
    """A Client per replica; select() splits the pool over them (see the module docstring)."""

    def __init__(
        self,
        targets: str | Sequence[str],
        *,
        oversample: int = 4,
        oversample_for: Mapping[str, int] | None = None,
        **client_options: Any,
    ) -> None:
        self.addresses = resolve(targets)
        if not self.addresses:
            raise ValueError("targets must name at least one replica")
        if oversample < 1:
            raise ValueError("oversample must be >= 1")
        self._oversample = oversample
        self._oversample_for = dict(OVERSAMPLE_FOR if oversample_for is None else oversample_for)
        if any(value < 1 for value in self._oversample_for.values()):
            raise ValueError("oversample_for values must be >= 1")
        self._clients = [Client(address, **client_options) for address in self.addresses]
        self._threads = ThreadPoolExecutor(max_workers=len(self._clients))
        self._batch: dict[str, bool] | None = None

    def __enter__(self) -> "ShardedClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._threads.shutdown(wait=False)
        for client in self._clients:
            client.close()

    def _is_batch(self, name: str) -> bool:
        if self._batch is None:
            described = self._clients[0].list_strategies()
            self._batch = {s.name: s.batch for s in described}
        return self._batch.get(name, False)

    def select(
        self,
        *,
        strategies: Sequence[StrategyArg],
        k: int,
        exclude: npt.ArrayLike | None = None,
        clamp_k: bool = False,
        budget: float | None = None,
        **options: Any,
    ) -> dict[str, Selection]:
        """Client.select over every replica's shard of the pool; the same arguments."""
        if budget is not None:
            raise ValueError("budget needs the whole ranking: call one server (Client)")
        pool = {
            name: np.asarray(value)
            for name, value in options.items()
            if name in POOL_AXIS and value is not None
        }
        rest = {name: value for name, value in options.items() if name not in POOL_AXIS}
        if not pool:
            raise ValueError("the pool needs at least one tensor with a pool axis")
        sizes = {name: array.shape[POOL_AXIS[name]] for name, array in pool.items()}
        n = next(iter(sizes.values()))
        if any(size != n for size in sizes.values()):
            raise ValueError(f"pool tensors must agree on n; got {sizes}")
        excluded = np.unique(np.asarray([] if exclude is None else exclude, np.int64).ravel())
        if excluded.size and (excluded[0] < 0 or excluded[-1] >= n):
            raise ValueError(f"exclude entries must be in [0, {n})")
        candidates = n - excluded.size
        if k > candidates and not clamp_k:
            raise ValueError(
                f"k must be at most the {candidates} candidate items, or set clamp_k; got {k}"
            )
        k = min(k, candidates)
        replicas = len(self._clients)
        specs: list[tuple[str, Mapping[str, ParamValue]]] = [
            (s, {}) if isinstance(s, str) else s for s in strategies
        ]
        ranked = [spec for spec in specs if not self._is_batch(spec[0])]
        batch = [spec for spec in specs if self._is_batch(spec[0])]
        results: dict[str, Selection] = {}
        if ranked:
            bounds = shard_bounds(n, replicas, block_rows(pool))
            shard_picks = self._per_shard(ranked, k, bounds, pool, excluded, rest)
            for name, _ in ranked:
                results[name] = _merge(name, shard_picks, k, pool.get("costs"), candidates)
        bounds = shard_bounds(n, replicas, 1)  # batch picks need no block alignment
        for spec in batch:
            factor = self._oversample_for.get(spec[0], self._oversample)
            shard_spec = spec
            if spec[0] in WEIGHTED_MERGE:
                shard_spec = (spec[0], {**spec[1], "report_weights": True})
            shard_picks = self._per_shard([shard_spec], k * factor, bounds, pool, excluded, rest)
            results[spec[0]] = self._final(spec, shard_picks, k, pool, rest)
        return {spec[0]: results[spec[0]] for spec in specs}

    def _per_shard(
        self,
        strategies: list[tuple[str, Mapping[str, ParamValue]]],
        k: int,
        bounds: list[tuple[int, int]],
        pool: dict[str, npt.NDArray[Any]],
        excluded: npt.NDArray[np.int64],
        rest: dict[str, Any],
    ) -> list[tuple[int, dict[str, Selection]]]:
        """Each shard's answer with its first row's pool index, the shards called in parallel."""

        def call(s: int) -> tuple[int, dict[str, Selection]]:
            start, end = bounds[s]
            lo, hi = np.searchsorted(excluded, [start, end])
            local = excluded[lo:hi] - start
            if end - start - local.size == 0:
                return start, {}
            shard = {name: _rows(array, name, start, end) for name, array in pool.items()}
            select: Any = self._clients[s].select  # pool tensors by name
            picks = select(strategies=strategies, k=k, clamp_k=True, exclude=local, **shard, **rest)
            return start, picks

        return list(self._threads.map(call, range(len(bounds))))

    def _final(
        self,
        spec: tuple[str, Mapping[str, ParamValue]],
        shard_picks: list[tuple[int, dict[str, Selection]]],
        k: int,
        pool: dict[str, npt.NDArray[Any]],
        rest: dict[str, Any],
    ) -> Selection:
        """One replica's selection of k from the union of the shards' picks (weighted by what
        each stands for, for WEIGHTED_MERGE)."""
        name = spec[0]
        answers = [(start, picks[name]) for start, picks in shard_picks if name in picks]
        union = np.concatenate([s.indices + start for start, s in answers])
        order = np.argsort(union, kind="stable")
        union = union[order]
        rows = {key: np.take(array, union, axis=POOL_AXIS[key]) for key, array in pool.items()}
        if name in WEIGHTED_MERGE:
            weights = []
            for _, s in answers:
                if s.represented_weights is None:
                    if s.indices.shape[0]:
                        raise ValueError(
                            f"a replica answered {name} without represented_weights: every "
                            "replica must run a labelwise version with report_weights"
                        )
                    continue
                weights.append(s.represented_weights)
            rows["item_weights"] = np.concatenate(weights)[order]
        select: Any = self._clients[0].select  # pool tensors by name
        chosen = select(strategies=[spec], k=k, clamp_k=True, **rows, **rest)
        picked = chosen[name]
        considered = sum(p[name].candidates_considered for _, p in shard_picks if name in p)
        return Selection(
            name=name,
            indices=union[picked.indices],
            scores=picked.scores,
            params=picked.params,
            total_cost=picked.total_cost,
            adversarial_points=picked.adversarial_points,
            candidates_considered=considered,
            represented_weights=picked.represented_weights,
        )


def _rows(array: npt.NDArray[Any], name: str, start: int, end: int) -> npt.NDArray[Any]:
    index: list[slice] = [slice(None)] * array.ndim
    index[POOL_AXIS[name]] = slice(start, end)
    return array[tuple(index)]


def _merge(
    name: str,
    shard_picks: list[tuple[int, dict[str, Selection]]],
    k: int,
    costs: npt.NDArray[Any] | None,
    candidates: int,
) -> Selection:
    """The k best of the shards' rankings, by score descending, then pool index ascending."""
    picks = [(start, p[name]) for start, p in shard_picks if name in p]
    indices = np.concatenate([s.indices + start for start, s in picks])
    scores = np.concatenate([s.scores for _, s in picks])
    order = np.lexsort((indices, -scores))[:k]
    indices, scores = indices[order], scores[order]
    if costs is None:
        total = float(indices.shape[0])
    else:
        total = float(np.asarray(costs, dtype=np.float64)[indices].sum())
    return Selection(
        name=name,
        indices=indices,
        scores=scores,
        params=picks[0][1].params,
        total_cost=total,
        candidates_considered=candidates,
    )


__all__ = ["ShardedClient", "block_rows", "resolve", "shard_bounds"]
