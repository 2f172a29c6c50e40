"""LabelQualityService over a real channel: the Python client, errors, health, metrics."""

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from labelwise import MISSING, Client, LabelwiseError
from labelwise.v1 import label_quality_pb2 as lq
from labelwise_server.strategies import annotators as ann
from tests.strategies.annotator_support import make_crowd

CROWD = make_crowd(3, items=60, annotators=4, classes=3, pool=40)


def test_assess_labels_over_the_wire(client: Client) -> None:
    result = client.assess_labels(
        CROWD.annotations, labeled_probabilities=CROWD.probabilities, deadline=30
    )
    expected = ann.crowdlab(CROWD.annotations, CROWD.probabilities)
    np.testing.assert_array_equal(result.consensus_labels, expected.consensus)
    np.testing.assert_array_equal(result.consensus_quality, expected.quality)
    np.testing.assert_array_equal(result.annotator_quality, expected.annotator_quality)
    assert result.method == "crowdlab" and result.confusion is None
    ds = client.assess_labels(CROWD.annotations, method="dawid_skene", num_classes=3, deadline=30)
    assert ds.method == "dawid_skene" and ds.confusion is not None
    assert ds.confusion.shape == (4, 3, 3)
    np.testing.assert_allclose(ds.confusion.sum(axis=2), 1.0)


def test_plan_labeling_over_the_wire(client: Client) -> None:
    costs = np.array([1.0, 0.5, 2.0, 1.0])
    plan = client.plan_labeling(
        CROWD.annotations,
        CROWD.probabilities,
        k=10,
        pool_probabilities=CROWD.pool,
        annotator_costs=costs,
        budget=6.0,
        deadline=30,
    )
    assert plan.total_cost <= 6.0 and plan.tasks
    assert {t.kind for t in plan.tasks} <= {"relabel", "label_first"}
    for task in plan.tasks:
        if task.kind == "relabel":
            assert CROWD.annotations[task.index, task.annotator] == MISSING
    assert len(plan.annotators) == 4 and plan.candidates_considered == 100


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda c: c.plan_labeling(CROWD.annotations, CROWD.probabilities, k=0), "k"),
        (
            lambda c: c.plan_labeling(CROWD.annotations, CROWD.probabilities[:5], k=1),
            "labeled_probabilities.shape",
        ),
        (
            lambda c: c.assess_labels(
                CROWD.annotations + 5, labeled_probabilities=CROWD.probabilities
            ),
            "annotations",
        ),
        (lambda c: c.assess_labels(CROWD.annotations), "labeled_probabilities"),
    ],
)
def test_bad_requests_name_the_field_and_the_server_still_serves(
    client: Client,
    channel: grpc.Channel,
    call,
    field: str,  # type: ignore[no-untyped-def]
) -> None:
    with pytest.raises(LabelwiseError) as caught:
        call(client)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in caught.value.violations] == [field]
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "labelwise.v1.LabelQualityService"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_bytes_that_do_not_parse_are_invalid_argument(channel: grpc.Channel) -> None:
    for method, reply in (
        ("AssessLabels", lq.AssessLabelsResponse),
        ("PlanLabeling", lq.PlanLabelingResponse),
    ):
        call = channel.unary_unary(
            f"/labelwise.v1.LabelQualityService/{method}",
            request_serializer=lambda data: data,
            response_deserializer=reply.FromString,
        )
        with pytest.raises(grpc.RpcError) as caught:
            call(b"\x0a\xff\xff", timeout=10)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_the_python_client_lists_the_label_quality_methods(client: Client) -> None:
    from labelwise_server.label_quality import METHODS

    methods = client.label_quality_methods(deadline=30)
    assert [m.name for m in methods] == [m.name for m in METHODS]
    dawid = methods[1]
    assert dawid.rpcs == ["AssessLabels"] and not dawid.is_default
    assert dawid.params["max_iterations"].default == 100
    assert dawid.params["max_iterations"].minimum == 1
    assert dawid.params["tolerance"].exclusive_minimum
    by_name = {m.name: m for m in methods}
    strength = by_name["bayes_em"].params["accuracy_prior_strength"]
    assert strength.default == 10 and strength.minimum == 0
    bound = by_name["interval_estimation"].params["accuracy_bound"]
    assert bound.default == "upper" and bound.allowed_values == ["upper", "mean", "lower"]
    assert client.list_strategies(deadline=30)  # the strategies are still there
