"""batch_bald and power_bald over the wire: served, listed, validated, equal to the functions."""

from typing import Any

import grpc
import numpy as np
import pytest

from labelwise.v1 import query_selection_pb2 as pb
from labelwise.v1 import query_selection_pb2_grpc as pb_grpc
from labelwise_server.strategies.bayesian import batch_bald_select
from tests.grpc.test_servicer import assert_serving, call_error, param, request, tensor, violations

RNG = np.random.default_rng(11)
COMMITTEE = RNG.dirichlet(np.full(4, 0.6), size=(6, 120)).astype(np.float32)  # [6, 120, 4]
PROBABILITIES = COMMITTEE.mean(axis=0)
PROBABILITIES /= PROBABILITIES.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def stub(channel: grpc.Channel) -> pb_grpc.QuerySelectionServiceStub:
    return pb_grpc.QuerySelectionServiceStub(channel)  # type: ignore[no-untyped-call]


def test_batch_bald_over_the_wire_equals_the_function(stub: Any) -> None:
    spec = ("batch_bald", {"num_samples": param(int_value=300),
                           "max_exact_configurations": param(int_value=64)})  # fmt: skip
    message = request([spec], k=9, committee=tensor(COMMITTEE), exclude=[3, 50], seed=5)
    [result] = stub.SelectQueries(message, timeout=30).results
    candidates = np.setdiff1d(np.arange(120), [3, 50]).astype(np.int64)
    picks, gains = batch_bald_select(COMMITTEE, candidates, 9, 5, num_samples=300, max_exact=64)
    assert list(result.indices) == picks.tolist()
    np.testing.assert_array_equal(result.scores, gains)
    assert result.params["num_samples"].int_value == 300
    assert result.total_cost == 9.0


def test_power_bald_over_any_base_within_a_budget(stub: Any) -> None:
    costs = RNG.uniform(0.5, 2.0, size=120)
    specs = [("power_bald", {"base": param(string_value=base), "beta": param(double_value=2.0)})
             for base in ("bald", "margin", "entropy")]  # fmt: skip
    message = request(specs, k=10, committee=tensor(COMMITTEE), probabilities=tensor(PROBABILITIES),
                      costs=tensor(costs), budget=6.0, seed=1)  # fmt: skip
    response = stub.SelectQueries(message, timeout=30)
    assert [r.params["base"].string_value for r in response.results] == [
        "bald",
        "margin",
        "entropy",
    ]
    for result in response.results:
        spent = costs[list(result.indices)].sum()
        assert len(set(result.indices)) == len(result.indices) <= 10
        assert spent <= 6.0 and result.total_cost == pytest.approx(spent)
    again = stub.SelectQueries(message, timeout=30)
    assert again.SerializeToString(deterministic=True) == response.SerializeToString(
        deterministic=True
    )


BAD = [
    ("base-is-a-batch-strategy", request([("power_bald", {"base": param(string_value="core_set")})],
                                         committee=tensor(COMMITTEE)),
     "strategies[0].params[base]", None),
    ("base-unknown", request(["bald", ("power_bald", {"base": param(string_value="nope")})],
                             committee=tensor(COMMITTEE)), "strategies[1].params[base]", None),
    ("base-needs-probabilities", request([("power_bald", {"base": param(string_value="margin")})],
                                         committee=tensor(COMMITTEE)),
     "strategies[0].name", "MISSING_INPUT"),
    ("beta-negative", request([("power_bald", {"beta": param(double_value=-1.0)})],
                              committee=tensor(COMMITTEE)), "strategies[0].params[beta]", None),
    ("num-samples-zero", request([("batch_bald", {"num_samples": param(int_value=0)})],
                                 committee=tensor(COMMITTEE)),
     "strategies[0].params[num_samples]", None),
    ("max-exact-too-large", request([("batch_bald", {"max_exact_configurations":
                                                     param(int_value=10**7)})],
                                    committee=tensor(COMMITTEE)),
     "strategies[0].params[max_exact_configurations]", None),
    ("batch-bald-needs-committee", request(["batch_bald"], probabilities=tensor(PROBABILITIES)),
     "strategies[0].name", "MISSING_INPUT"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("message", "field", "reason"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_bad_parameters_are_invalid_argument_naming_the_field(
    stub: Any,
    channel: grpc.Channel,
    message: pb.SelectQueriesRequest,
    field: str,
    reason: str | None,
) -> None:
    error = call_error(lambda: stub.SelectQueries(message, timeout=10))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    [violation] = violations(error)
    assert violation.field == field, violation.description
    if reason is not None:
        assert violation.reason == reason
    assert_serving(channel)


def test_list_strategies_describes_the_bayesian_batch_parameters(stub: Any) -> None:
    by_name = {
        s.name: s for s in stub.ListStrategies(pb.ListStrategiesRequest(), timeout=10).strategies
    }
    power, batch = by_name["power_bald"], by_name["batch_bald"]
    assert power.batch and power.seeded and batch.batch and batch.seeded
    base, beta, balance = power.params
    assert balance.name == "class_balance"
    assert (base.name, base.default_value.string_value) == ("base", "bald")
    assert "margin" in [v.string_value for v in base.allowed_values]
    assert "core_set" not in [v.string_value for v in base.allowed_values]
    assert (beta.name, beta.default_value.double_value, beta.minimum) == ("beta", 1.0, 0.0)
    samples, exact, _ = batch.params
    assert (samples.name, samples.default_value.int_value) == ("num_samples", 10_000)
    assert (exact.name, exact.default_value.int_value) == ("max_exact_configurations", 10_000)
