"""Run registry entries on plain arrays, the way the service runs them, and make random pools."""

from typing import Any

import numpy as np
import numpy.typing as npt

from labelwise_server.selection import select
from labelwise_server.strategies import STRATEGIES, Input, Pool, Task
from labelwise_server.strategies._types import ParamValue
from labelwise_server.validation import Selection, StrategyCall

DTYPES = (np.float32, np.float64)
# Float32 inputs are computed on in float32 in places (the consensus, entropy sums): their
# scores agree with float64 references to ~2e-7; float64 ones to ~1e-15.
TOLERANCE = {np.dtype(np.float32): dict(rtol=1e-5, atol=1e-6),
             np.dtype(np.float64): dict(rtol=1e-10, atol=1e-12)}  # fmt: skip


def with_defaults(name: str, params: dict[str, ParamValue] | None = None) -> dict[str, ParamValue]:
    filled = {p: spec.default for p, spec in STRATEGIES[name].params.items()}
    filled.update(params or {})
    return filled


def make_pool(
    probabilities: npt.NDArray[Any] | None = None,
    committee: npt.NDArray[Any] | None = None,
    embeddings: npt.NDArray[Any] | None = None,
) -> Pool:
    n = probabilities.shape[0] if probabilities is not None else committee.shape[1]  # type: ignore[union-attr]
    return Pool(n=n, probabilities=probabilities, committee=committee, embeddings=embeddings)


def run(
    names: list[tuple[str, dict[str, ParamValue]]],
    pool: Pool,
    k: int | None = None,
    seed: int = 0,
    exclude: npt.NDArray[np.int64] | None = None,
) -> list[tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]]:
    """(indices, scores) of each strategy through selection.select."""
    keep = np.ones(pool.n, dtype=bool)
    if exclude is not None:
        keep[exclude] = False
    candidates = np.flatnonzero(keep).astype(np.int64)
    task = Task(k=candidates.shape[0] if k is None else k, candidates=candidates, seed=seed)
    calls = tuple(
        StrategyCall(STRATEGIES[name], with_defaults(name, params), f"strategies[{i}]")
        for i, (name, params) in enumerate(names)
    )
    results = select(Selection(pool, calls, task))
    return [(r.indices, r.scores) for r in results]


def scores_of(
    name: str,
    params: dict[str, ParamValue] | None = None,
    *,
    probabilities: npt.NDArray[Any] | None = None,
    committee: npt.NDArray[Any] | None = None,
    embeddings: npt.NDArray[Any] | None = None,
    seed: int = 0,
) -> npt.NDArray[np.float64]:
    """The strategy's score of every pool item [n], in pool order, read off a full ranking."""
    pool = make_pool(probabilities, committee, embeddings)
    [(indices, scores)] = run([(name, params or {})], pool, seed=seed)
    assert sorted(indices.tolist()) == list(range(pool.n))
    out = np.empty(pool.n)
    out[indices] = scores
    return out


def random_probabilities(
    rng: np.random.Generator, n: int, c: int, dtype: Any = np.float64, alpha: float = 1.0
) -> npt.NDArray[Any]:
    p = rng.dirichlet(np.full(c, alpha), size=n)
    return p.astype(dtype)


def random_committee(
    rng: np.random.Generator, m: int, n: int, c: int, dtype: Any = np.float64, alpha: float = 1.0
) -> npt.NDArray[Any]:
    return rng.dirichlet(np.full(c, alpha), size=(m, n)).astype(dtype)


def inputs_for(
    name: str,
    rng: np.random.Generator,
    n: int = 50,
    c: int = 4,
    m: int = 5,
    dtype: Any = np.float64,
) -> dict[str, npt.NDArray[Any]]:
    """Random inputs covering whatever the strategy needs (both kinds for `random`).

    Strategies on embeddings (whose base strategy, a parameter, may need either
    kind) get every input: probabilities, committee and embeddings [n, 3].
    """
    needs = STRATEGIES[name].needs
    everything = Input.EMBEDDINGS in needs
    inputs: dict[str, npt.NDArray[Any]] = {}
    if Input.PROBABILITIES in needs or Input.ANY in needs or everything:
        inputs["probabilities"] = random_probabilities(rng, n, c, dtype)
    if Input.COMMITTEE in needs or everything:
        inputs["committee"] = random_committee(rng, m, n, c, dtype)
    if everything:
        inputs["embeddings"] = rng.normal(size=(n, 3)).astype(dtype)
    return inputs


# Axis of each input along which the pool runs.
POOL_AXIS = {"probabilities": 0, "committee": 1, "embeddings": 0}


# Strategies whose score does not change when the classes are relabelled (all of them but
# random, which ignores the values entirely and is tested for that separately).
SYMMETRIC = [
    name for name, s in STRATEGIES.items() if name != "random" and s.task == "classification"
]
