"""auto over a real channel: the same request gives the same bytes on every server; hostile
history is refused naming the field; the report reaches the clients."""

from collections.abc import Iterator
from typing import Any

import grpc
import numpy as np
import pytest

from labelwise import Client, Round
from labelwise.tensors import encode_tensor
from labelwise.v1 import history_pb2
from labelwise.v1 import query_selection_pb2 as pb
from labelwise_server.decode.history import MAX_ITEMS, MAX_ROUNDS
from tests.grpc.conftest import TEST_CONFIG, ServerThread

RNG = np.random.default_rng(15)
P = RNG.dirichlet(np.ones(3), size=40)  # [40, 3]
SERVICE = "/labelwise.v1.QuerySelectionService/SelectQueries"


def history_round(
    strategies: list[str], labels: list[int], probabilities: list[float] | None = None
) -> history_pb2.SelectionRound:
    return history_pb2.SelectionRound(
        strategies=strategies, labels=labels, probabilities=probabilities or []
    )


HISTORY = [
    history_round([""], [0, 1, 2, 0, 1, 2]),
    history_round(
        ["margin", "entropy", "random", "random"],
        [0, 1, 2, 2],
        [0.5, 0.3, 0.2, 0.2, 0.2, 0.6, 0.1, 0.1, 0.8, 0.3, 0.3, 0.4],
    ),
    history_round(["entropy"], [1, 1, 0], [0.2, 0.5, 0.3, 0.1, 0.8, 0.1, 0.6, 0.3, 0.1]),
]


def message(history: list[history_pb2.SelectionRound], **params: Any) -> pb.SelectQueriesRequest:
    spec = pb.StrategySpec(name="auto", params={k: pb.ParamValue(**v) for k, v in params.items()})
    request = pb.SelectQueriesRequest(strategies=[spec], k=8, seed=11, history=history)
    request.probabilities.CopyFrom(encode_tensor(P))
    return request


def raw_call(channel: grpc.Channel, request: pb.SelectQueriesRequest) -> bytes:
    call = channel.unary_unary(
        SERVICE, request_serializer=lambda b: b, response_deserializer=lambda b: b
    )
    reply: bytes = call(request.SerializeToString(), timeout=30)
    return reply


@pytest.fixture(scope="module")
def second_server() -> Iterator[ServerThread]:
    thread = ServerThread(TEST_CONFIG)
    yield thread
    thread.stop()


def test_auto_answers_byte_for_byte_the_same_on_two_servers(
    channel: grpc.Channel, second_server: ServerThread
) -> None:
    request = message(HISTORY, arms={"string_value": "margin,entropy,random"})
    first = raw_call(channel, request)
    assert raw_call(channel, request) == first
    with grpc.insecure_channel(second_server.address) as other:
        assert raw_call(other, request) == first
    response = pb.SelectQueriesResponse.FromString(first)
    [result] = response.results
    report = result.auto_selection
    assert len(report.strategies) == len(result.indices) == 8
    assert [arm.name for arm in report.arms] == ["margin", "entropy", "random"]
    assert sum(arm.picks for arm in report.arms) == 8
    assert sum(arm.weight for arm in report.arms) == pytest.approx(1.0)
    assert report.history_rounds == 3 and report.history_items == 13
    assert report.reward == "surprise"


def test_the_python_client_sends_rounds_and_reads_the_report(client: Client) -> None:
    history = [
        Round("", [0, 1, 2, 0, 1, 2]),
        Round(
            ["margin", "entropy", "random", "random"],
            [0, 1, 2, 2],
            np.array([[0.5, 0.3, 0.2], [0.2, 0.2, 0.6], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4]]),
        ),
        Round("entropy", [1, 1, 0], np.array([[0.2, 0.5, 0.3], [0.1, 0.8, 0.1], [0.6, 0.3, 0.1]])),
    ]
    selection = client.select(
        strategies=[("auto", {"arms": "margin,entropy,random"})],
        k=8,
        seed=11,
        probabilities=P,
        history=history,
    )
    picked = selection["auto"]
    assert picked.auto is not None
    request = message(HISTORY, arms={"string_value": "margin,entropy,random"})
    wire = pb.SelectQueriesResponse.FromString(raw_call_client(client, request))
    assert picked.indices.tolist() == list(wire.results[0].indices)
    assert picked.auto.strategies == list(wire.results[0].auto_selection.strategies)


def raw_call_client(client: Client, request: pb.SelectQueriesRequest) -> bytes:
    return raw_call(client._channel, request)  # the same server, raw bytes


def _many_rounds() -> list[history_pb2.SelectionRound]:
    return [history_round([""], [0])] * (MAX_ROUNDS + 1)


BAD: list[tuple[str, pb.SelectQueriesRequest, str]] = [
    ("label-past-c", message([history_round(["margin"], [0, 3])]), "history[0].labels[1]"),
    ("label-negative", message([history_round(["margin"], [-1])]), "history[0].labels[0]"),
    ("no-labels", message([history_round(["margin"], [])]), "history[0].labels"),
    ("unknown-strategy", message([history_round(["margn"], [0])]), "history[0].strategies[0]"),
    ("auto-as-arm", message([history_round(["auto"], [0])]), "history[0].strategies[0]"),
    ("names-misaligned", message([history_round(["margin", "random"], [0, 1, 2])]),
     "history[0].strategies"),
    ("probabilities-length", message([history_round(["margin"], [0, 1], [0.5, 0.5, 0.0])]),
     "history[0].probabilities"),
    ("probabilities-rows", message([history_round(["margin"], [0], [0.5, 0.6, 0.0])]),
     "history[0].probabilities"),
    ("probabilities-nan", message([history_round(["margin"], [0], [np.nan, 0.5, 0.5])]),
     "history[0].probabilities"),
    ("too-many-rounds", message(_many_rounds()), "history"),
    ("too-many-items", message([history_round([""], [0] * (MAX_ITEMS + 1))]), "history"),
    ("arms-unknown", message([], arms={"string_value": "margin,bogus"}),
     "strategies[0].params[arms]"),
    ("arms-repeated", message([], arms={"string_value": "margin,margin"}),
     "strategies[0].params[arms]"),
    ("arms-auto", message([], arms={"string_value": "auto,random"}), "strategies[0].params[arms]"),
    ("arms-model-only", message([], arms={"string_value": "deepfool,random"}),
     "strategies[0].params[arms]"),
    ("arms-need-embeddings", message([], arms={"string_value": "core_set,random"}),
     "strategies[0].name"),
    ("surprise-without-probabilities", message([history_round(["margin"], [0, 1])]),
     "history[0].probabilities"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "request_message", "field"), BAD, ids=[b[0] for b in BAD])
def test_hostile_history_is_refused_naming_the_field(
    channel: grpc.Channel, case: str, request_message: pb.SelectQueriesRequest, field: str
) -> None:
    from tests.grpc.test_servicer import violations

    with pytest.raises(grpc.RpcError) as caught:
        raw_call(channel, request_message)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, case
    [violation] = violations(caught.value)
    assert violation.field == field
    assert len(violation.description) < 600


def test_list_strategies_describes_auto_probcover_and_class_balance(client: Client) -> None:
    described = {s.name: s for s in client.list_strategies(deadline=10)}
    auto = described["auto"]
    assert auto.batch and auto.seeded and auto.required_inputs == ["probabilities"]
    assert auto.params["arms"].default == "margin,random"
    assert auto.params["reward"].allowed_values == ["surprise", "rare_surprise", "class_diversity"]
    assert auto.params["reward"].default == "surprise"
    probcover = described["probcover"]
    assert probcover.required_inputs == ["embeddings"] and probcover.batch
    assert probcover.params["delta"].default == 0.0
    for name in ("entropy", "margin", "bald", "core_set", "badge", "probcover"):
        assert described[name].seeded, name  # a balanced score strategy draws from the seed
        balance = described[name].params["class_balance"]
        assert (balance.type, balance.default) == ("bool", False), name
