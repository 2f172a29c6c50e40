"""The work pool against real work processes: kill at the deadline, memory limit, deaths,
model bytes handed to the process that lacks them, health."""

import asyncio
import hashlib
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from labelwise.tensors import encode_tensor
from labelwise.v1 import query_selection_pb2 as pb
from labelwise_server.errors import DeadlineExceeded, ModelNotCached, WorkFailed
from labelwise_server.sandbox.pool import PoolSettings, WorkPool
from labelwise_server.tensors import parse_request
from tests import onnx_models as om
from tests.hostile import models as hostile

D, C = 4, 3


def settings(**changes: Any) -> PoolSettings:
    values: dict[str, Any] = dict(
        processes=2, memory_bytes=1 << 30, max_elements=1 << 24, max_model_bytes=1 << 20,
        model_cache_bytes=64 << 20, max_response_bytes=1 << 24, inference_threads=1,
    )  # fmt: skip
    values.update(changes)
    return PoolSettings(**values)


class Loop:
    """An event loop in the test's thread; run(coroutine) waits for it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)


@pytest.fixture(scope="module")
def loop() -> Iterator[Loop]:
    runner = Loop()
    yield runner
    runner.loop.close()


@pytest.fixture(scope="module")
def pool(loop: Loop) -> Iterator[WorkPool]:
    health: list[bool] = []
    work = WorkPool(settings(), on_health=health.append)
    loop.run(work.start())
    assert health == [True]
    yield work
    loop.run(work.close())


def request(**fields: Any) -> Any:
    message = pb.SelectQueriesRequest(strategies=[pb.StrategySpec(name="entropy")], k=2,
                                      **fields)  # fmt: skip
    return parse_request(message.SerializeToString())


def probabilities(n: int = 50) -> Any:
    p = np.random.default_rng(n).dirichlet(np.ones(C), size=n).astype(np.float32)
    return request(probabilities=encode_tensor(p))


def indices(reply: Any) -> list[int]:
    return list(pb.SelectQueriesResponse.FromString(reply.body).results[0].indices)


def deadline(seconds: float) -> float:
    return time.monotonic() + seconds


def pids(pool: WorkPool) -> set[int]:
    return {p.pid for p in pool._all}  # the test looks inside


def running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def wait_for(loop: Loop, condition: Any, seconds: float = 30.0) -> None:
    async def poll() -> None:
        end = time.monotonic() + seconds
        while not condition():
            assert time.monotonic() < end, "timed out"
            await asyncio.sleep(0.05)

    loop.run(poll())


def test_answers_equal_the_in_process_answer(loop: Loop, pool: WorkPool) -> None:
    from labelwise_server.work import select_response

    small, large = probabilities(50), probabilities(200_000)  # large: > 1 MiB, via a memfd
    for wire in (small, large):
        reply = loop.run(pool.select(wire, deadline(30)))
        expected, rows = select_response(wire, 1 << 24, None, lambda: None,
                                         lambda s, t: None, 1 << 24)  # fmt: skip
        assert reply.body == expected.SerializeToString()
        assert reply.rows == rows


def test_a_loop_bomb_stops_at_its_deadline_and_its_process_stays(
    loop: Loop, pool: WorkPool
) -> None:
    """ONNX Runtime's terminate flag ends the graph: no kill, the process keeps serving."""
    x = np.ones((4, D), np.float32)
    bomb = request(models=[pb.Model(onnx=hostile.loop_bomb(D, C))], model_inputs=encode_tensor(x))
    kills, before = pool.kills, pids(pool)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        loop.run(pool.select(bomb, deadline(1.0)))
    assert time.monotonic() - started < 1.2
    loop.run(asyncio.sleep(0.5))  # past the stop grace: a kill would have happened by now
    assert pool.kills == kills and pids(pool) == before
    assert indices(loop.run(pool.select(probabilities(), deadline(30))))


def test_work_that_cannot_stop_is_killed_at_its_deadline_and_replaced(
    loop: Loop, pool: WorkPool
) -> None:
    """scikit-learn's k-means (typiclust) checks no stop flag: its process is killed."""
    embeddings = np.random.default_rng(2).normal(size=(60_000, 32)).astype(np.float32)
    spec = pb.StrategySpec(
        name="typiclust", params={"max_clusters": pb.ParamValue(int_value=60_000)}
    )
    message = pb.SelectQueriesRequest(strategies=[spec], k=10_000,
                                      embeddings=encode_tensor(embeddings))  # fmt: skip
    wire = parse_request(message.SerializeToString())
    kills, before = pool.kills, pids(pool)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        loop.run(pool.select(wire, deadline(1.0)))
    assert time.monotonic() - started < 1.2
    wait_for(loop, lambda: pool.kills == kills + 1 and pool.live == 2)
    assert len(pids(pool) - before) == 1  # one fresh process in place of the killed one
    for pid in before - pids(pool):  # gone within moments, not left spinning
        wait_for(loop, lambda pid=pid: not running(pid), 2.0)
    assert indices(loop.run(pool.select(probabilities(), deadline(30))))


def test_a_call_over_the_memory_limit_fails_alone(loop: Loop) -> None:
    small = WorkPool(settings(processes=1, memory_bytes=768 << 20))
    loop.run(small.start())
    try:
        x = np.ones((4, D), np.float32)
        x[0, 0] = 1e9  # the model fills 4 GB of ones: no static check can see it
        bomb = request(models=[pb.Model(onnx=hostile.constant_of_shape_bomb(D, C))],
                       model_inputs=encode_tensor(x))  # fmt: skip
        with pytest.raises(WorkFailed) as caught:
            loop.run(small.select(bomb, deadline(30)))
        assert caught.value.reason in ("WORK_MEMORY_EXCEEDED", "WORK_PROCESS_DIED")
        assert indices(loop.run(small.select(probabilities(), deadline(30))))
    finally:
        loop.run(small.close())


def test_a_process_that_dies_while_idle_is_replaced(loop: Loop, pool: WorkPool) -> None:
    deaths = pool.deaths
    victim = next(iter(pids(pool)))
    os.kill(victim, signal.SIGKILL)
    wait_for(
        loop, lambda: pool.deaths == deaths + 1 and pool.live == 2 and victim not in pids(pool)
    )
    assert pool.serving
    for _ in range(4):  # every process answers
        assert indices(loop.run(pool.select(probabilities(), deadline(30))))


def test_a_model_known_to_the_worker_reaches_every_process(loop: Loop, pool: WorkPool) -> None:
    model = om.Linear.random(np.random.default_rng(3), D, C).onnx()
    x = np.random.default_rng(4).normal(size=(20, D)).astype(np.float32)
    sent = request(models=[pb.Model(onnx=model)], model_inputs=encode_tensor(x))
    by_bytes = indices(loop.run(pool.select(sent, deadline(30))))
    by_hash = request(models=[pb.Model(sha256=hashlib.sha256(model).hexdigest())],
                      model_inputs=encode_tensor(x))  # fmt: skip
    for victim in list(pids(pool)):  # no process holds the session any more
        os.kill(victim, signal.SIGKILL)
    wait_for(loop, lambda: pool.live == 2 and not (pids(pool) & {victim}))
    for _ in range(3):
        assert indices(loop.run(pool.select(by_hash, deadline(30)))) == by_bytes
    unknown = request(models=[pb.Model(sha256=hashlib.sha256(b"other").hexdigest())],
                      model_inputs=encode_tensor(x))  # fmt: skip
    with pytest.raises(ModelNotCached):
        loop.run(pool.select(unknown, deadline(30)))


def test_health_follows_the_pool(loop: Loop) -> None:
    health: list[bool] = []
    work = WorkPool(settings(processes=1), on_health=health.append)
    loop.run(work.start())
    loop.run(work.close())
    assert health == [True, False]


def test_a_hash_the_worker_evicted_is_not_cached_whichever_process_holds_it(loop: Loop) -> None:
    """The worker's model cache alone answers MODEL_NOT_CACHED, so a caller sees one cache."""
    first = om.Linear.random(np.random.default_rng(5), D, C).onnx()
    second = om.Linear.random(np.random.default_rng(6), D, C).onnx()
    work = WorkPool(settings(processes=2, model_cache_bytes=len(first) + len(second) // 2))
    loop.run(work.start())
    try:
        x = encode_tensor(np.random.default_rng(7).normal(size=(20, D)).astype(np.float32))
        for model in (first, second):  # the second evicts the first from the worker's cache
            loop.run(work.select(request(models=[pb.Model(onnx=model)], model_inputs=x),
                                 deadline(30)))  # fmt: skip
        by_hash = request(models=[pb.Model(sha256=hashlib.sha256(first).hexdigest())],
                          model_inputs=x)  # fmt: skip
        for _ in range(4):  # every process gives the same answer
            with pytest.raises(ModelNotCached):
                loop.run(work.select(by_hash, deadline(30)))
    finally:
        loop.run(work.close())
