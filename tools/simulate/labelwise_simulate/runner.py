"""Run every (data set, seed, strategy) loop through one service and collect the curves.

Loops run in this process (jobs=1) or in spawned worker processes, each with its
own client channel to the same service; the results do not depend on jobs.
"""

import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from multiprocessing import get_context

from threadpoolctl import threadpool_limits
from tqdm import tqdm

from labelwise import Client
from labelwise_simulate.cores import available_cores
from labelwise_simulate.data import Data, DataSource, Split, load, split
from labelwise_simulate.defaults import TARGETS, Protocol
from labelwise_simulate.loop import (
    SUPPORTED_INPUTS,
    Curve,
    StrategyPlan,
    cap,
    dollar_budget,
    full_accuracy,
    parse_plan_text,
    rounds,
    run,
)
from labelwise_simulate.service import ServeProcess


@dataclass(frozen=True)
class Settings:
    sources: tuple[DataSource, ...]
    seeds: int = 5
    seed: int = 0
    budget: int | None = None  # None: each data set's default budget
    protocol: Protocol = field(default_factory=Protocol)
    # Empty: every strategy the service offers that fits, and DEFAULT_VARIANTS; an entry may
    # carry parameters, "name:key=value,...".
    strategies: tuple[str, ...] = ()
    address: str | None = None  # None: start `labelwise serve` as a child process
    serve_command: tuple[str, ...] | None = None  # None: the `labelwise serve` installed here
    jobs: int = 1
    progress: bool = True

    def run_seeds(self) -> list[int]:
        return [self.seed + i for i in range(self.seeds)]


@dataclass
class DatasetResult:
    name: str
    budget: int
    pool_size: int
    test_size: int
    n_classes: int
    has_costs: bool
    full_accuracy: list[float]  # per seed
    cost_aware: bool  # the curves run on dollars (x = cost), not on labels
    x_budget: list[float]  # per seed: the label budget, or its dollars when cost-aware
    curves: dict[str, list[Curve]] = field(default_factory=dict)  # plan label -> per seed
    cap: int = 0  # labels a run short of the highest target at the budget may go on to


@dataclass
class Results:
    settings: Settings
    strategies: list[StrategyPlan]
    skipped: dict[str, list[str]]  # strategy -> inputs the simulation cannot provide
    datasets: list[DatasetResult]


@lru_cache(maxsize=4)
def _data(source: DataSource) -> Data:
    return load(source)


@lru_cache(maxsize=8)
def _split(source: DataSource, test_fraction: float, seed: int) -> Split:
    return split(_data(source), test_fraction, seed)


# Parameterised strategies the default run adds after their base strategy, where the service
# offers the parameter: entropy with per-class quotas, the guard against entropy starving a
# predicted class.
DEFAULT_VARIANTS: tuple[tuple[str, tuple[tuple[str, bool | int | float | str], ...]], ...] = (
    ("entropy", (("class_balance", True),)),
)


def plan_strategies(
    client: Client, wanted: Sequence[str]
) -> tuple[list[StrategyPlan], dict[str, list[str]]]:
    """The service's strategies whose inputs the simulation can give (ListStrategies order),
    each parameterised variant right after its strategy."""
    offered = client.list_strategies()
    names = {s.name for s in offered}
    parsed = [parse_plan_text(text) for text in wanted]
    unknown = [name for name, _ in parsed if name not in names]
    if unknown:
        raise ValueError(f"--strategies: the service has no {unknown}; it offers {sorted(names)}")
    if not wanted:
        parsed = [(s.name, ()) for s in offered]
        parsed += [v for v in DEFAULT_VARIANTS
                   if any(s.name == v[0] and {k for k, _ in v[1]} <= set(s.params)
                          for s in offered)]  # fmt: skip
    plans, skipped = [], {}
    for strategy in offered:
        if strategy.family == "stream":  # StreamSelectionService's: labelwise-simulate --stream
            continue
        variants = [params for name, params in parsed if name == strategy.name]
        if strategy.name == "random" and () not in variants:
            variants.insert(0, ())
        for params in variants:
            bad = sorted({k for k, _ in params} - set(strategy.params))
            if bad:
                raise ValueError(f"--strategies: {strategy.name} has no parameter {bad[0]!r}; "
                                 f"it takes {sorted(strategy.params)}")  # fmt: skip
        if not variants:
            continue
        missing = [i for i in strategy.required_inputs if i not in SUPPORTED_INPUTS]
        if strategy.task != "classification":  # this loop trains a single-label classifier
            missing = [f"{strategy.task.replace('_', '-')} outputs"]
        if missing:
            skipped[strategy.name] = missing
            continue
        for params in dict.fromkeys(variants):
            plans.append(StrategyPlan(strategy.name, frozenset(strategy.required_inputs),
                                      strategy.family, params))  # fmt: skip
    if "random" not in {p.name for p in plans}:
        raise ValueError("the service offers no 'random' strategy, the baseline every saving needs")
    return plans, skipped


@dataclass(frozen=True)
class _Job:
    address: str
    source: DataSource
    seed: int
    strategy: StrategyPlan
    budget: int
    protocol: Protocol
    target: float  # the accuracy a run short of it at the budget goes on for


def _run_job(job: _Job, on_round: Callable[[], None] = lambda: None) -> Curve:
    data_split = _split(job.source, job.protocol.test_fraction, job.seed)
    with Client(job.address) as client:
        return run(client, data_split, job.strategy, job.budget, job.protocol, job.seed, on_round,
                   target=job.target)  # fmt: skip


def _worker_init() -> None:
    # Each worker is one process per core: keep BLAS single-threaded so they do not fight.
    threadpool_limits(1)


@contextmanager
def _service(settings: Settings) -> Iterator[str]:
    if settings.address is not None:
        yield settings.address
        return
    # Loops in parallel need as many server processes, or their calls queue for one core.
    with ServeProcess(max(1, settings.jobs), settings.serve_command) as server:
        yield server.address


def simulate(settings: Settings) -> Results:
    with _service(settings) as address:
        with Client(address) as client:
            plans, skipped = plan_strategies(client, settings.strategies)
        datasets: list[DatasetResult] = []
        jobs: list[_Job] = []
        total_rounds = 0
        for source in settings.sources:
            data = _data(source)
            budget = settings.budget or source.default_budget
            cost_aware = settings.protocol.cost_aware and data.costs is not None
            splits = [
                _split(source, settings.protocol.test_fraction, s) for s in settings.run_seeds()
            ]
            budget = min(budget, len(splits[0].pool_y))
            result = DatasetResult(
                name=source.name,
                budget=budget,
                pool_size=len(splits[0].pool_y),
                test_size=len(splits[0].test_y),
                n_classes=splits[0].n_classes,
                has_costs=data.costs is not None,
                full_accuracy=[
                    full_accuracy(s, settings.protocol, seed)
                    for s, seed in zip(splits, settings.run_seeds(), strict=True)
                ],
                cost_aware=cost_aware,
                x_budget=[
                    dollar_budget(s, budget) if cost_aware else float(budget) for s in splits
                ],
                curves={plan.label: [] for plan in plans},
                cap=min(len(splits[0].pool_y), cap(budget, settings.protocol)),
            )
            datasets.append(result)
            for seed, full in zip(settings.run_seeds(), result.full_accuracy, strict=True):
                for plan in plans:
                    jobs.append(_Job(address, source, seed, plan, result.budget,
                                     settings.protocol, max(TARGETS) * full))  # fmt: skip
                    total_rounds += rounds(result.pool_size, result.n_classes, result.budget,
                                           settings.protocol)  # fmt: skip
        curves = _run_all(jobs, settings, total_rounds)
        by_name = {d.name: d for d in datasets}
        for job, curve in zip(jobs, curves, strict=True):
            by_name[job.source.name].curves[job.strategy.label].append(curve)
    return Results(settings, plans, skipped, datasets)


def _run_all(jobs: list[_Job], settings: Settings, total_rounds: int) -> list[Curve]:
    bar = tqdm(total=total_rounds, unit="round", disable=not settings.progress, file=sys.stderr,
               desc="simulate")  # fmt: skip
    with bar:
        if settings.jobs <= 1:
            with threadpool_limits(1):
                return [_run_job(job, lambda: bar.update(1)) for job in jobs]
        results: list[Curve | None] = [None] * len(jobs)
        context = get_context("spawn")  # fork would copy the gRPC threads of the channel used above
        with ProcessPoolExecutor(
            settings.jobs, mp_context=context, initializer=_worker_init
        ) as pool:
            futures = {pool.submit(_run_job, job): at for at, job in enumerate(jobs)}
            for future in as_completed(futures):
                curve = future.result()
                results[futures[future]] = curve
                bar.update(len(curve.labels) - 1)
        return [curve for curve in results if curve is not None]


def default_jobs() -> int:
    """One loop per core this process may use (its affinity, capped by a cgroup CPU limit)."""
    return available_cores()
