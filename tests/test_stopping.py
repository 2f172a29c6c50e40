"""Stopping criteria: Cohen's kappa against scikit-learn, hand-computed verdicts, validation."""

import math

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from labelwise.tensors import encode_tensor
from labelwise.v1 import query_selection_pb2 as pb
from labelwise_server.errors import InvalidArgument
from labelwise_server.stopping import (
    StoppingInputs,
    Thresholds,
    cohen_kappa,
    decode_stopping,
    evaluate,
)


def test_kappa_hand_case() -> None:
    # 10 items, 8 agree; each says 6×A 4×B: p_e = 0.6·0.6 + 0.4·0.4 = 0.52.
    a = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1])
    b = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 0])
    assert math.isclose(cohen_kappa(a, b), (0.8 - 0.52) / (1 - 0.52))


@pytest.mark.parametrize("seed", range(20))
def test_kappa_equals_scikit_learn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    s, c = int(rng.integers(2, 200)), int(rng.integers(2, 6))
    a = rng.integers(0, c, size=s)
    b = np.where(rng.uniform(size=s) < 0.7, a, rng.integers(0, c, size=s))
    b[0] = (a[0] + 1) % c  # at least one disagreement: scikit-learn's kappa is then defined
    assert math.isclose(cohen_kappa(a, b), cohen_kappa_score(a, b), rel_tol=1e-12, abs_tol=1e-15)


def test_kappa_of_identical_constant_rounds_is_one() -> None:
    assert cohen_kappa(np.zeros(5, np.int64), np.zeros(5, np.int64)) == 1.0
    assert cohen_kappa(np.array([2, 7, 7]), np.array([2, 7, 7])) == 1.0


def _by_name(inputs: StoppingInputs) -> dict[str, object]:
    return {c.name: c for c in evaluate(inputs).criteria}


def test_stabilizing_predictions_stop_after_a_window_of_high_kappas() -> None:
    base = np.arange(100) % 3
    changed = base.copy()
    changed[:10] = (changed[:10] + 1) % 3
    # Rounds: changed, base, base, base, base -> kappas: low, 1, 1, 1.
    labels = np.stack([changed, base, base, base, base])
    verdict = evaluate(StoppingInputs(labels=labels))
    assert len(verdict.kappas) == 4 and verdict.kappas[1:] == [1.0, 1.0, 1.0]
    [sp, cc] = verdict.criteria
    assert (sp.name, sp.value, sp.stop, sp.evaluated) == (
        "stabilizing_predictions",
        1.0,
        True,
        True,
    )
    assert (cc.name, cc.value, cc.stop) == ("classification_change", 0.0, True)
    assert verdict.stop
    # A window of 4 includes the low kappa: mean < 0.99, no stop.
    verdict = evaluate(StoppingInputs(labels=labels, thresholds=Thresholds(window=4)))
    assert not verdict.criteria[0].stop
    assert math.isclose(verdict.criteria[0].value, (verdict.kappas[0] + 3) / 4)
    assert not verdict.stop  # rule all: classification change says stop, kappa does not
    verdict = evaluate(StoppingInputs(labels=labels, thresholds=Thresholds(window=4, rule="any")))
    assert verdict.stop


def test_too_few_rounds_are_not_evaluated_and_do_not_stop() -> None:
    labels = np.array([[0, 1, 1], [0, 1, 1]])
    verdict = evaluate(StoppingInputs(labels=labels))  # window 3 needs 4 rounds
    sp, cc = verdict.criteria
    assert not sp.evaluated and not sp.stop and sp.value == 1.0
    assert cc.evaluated and cc.stop
    assert verdict.stop  # only evaluated criteria combine
    single = evaluate(StoppingInputs(labels=labels[:1]))
    assert not any(c.evaluated for c in single.criteria) and not single.stop


def test_overall_uncertainty_reads_the_pool_or_else_the_last_round() -> None:
    sure = np.array([[0.999, 0.001], [1.0, 0.0]])
    unsure = np.array([[0.5, 0.5], [0.9, 0.1]])
    h = -(0.999 * math.log(0.999) + 0.001 * math.log(0.001))
    verdict = evaluate(StoppingInputs(pool_probabilities=sure))
    [ou] = verdict.criteria
    assert math.isclose(ou.value, h / 2) and ou.stop and verdict.stop  # h/2 ≈ 0.0040 <= 0.01
    strict = Thresholds(aggregate="max", uncertainty=0.001)
    verdict = evaluate(StoppingInputs(pool_probabilities=sure, thresholds=strict))
    assert math.isclose(verdict.criteria[0].value, h) and not verdict.stop
    stop_set = np.stack([sure, unsure])  # the last round is unsure
    verdict = evaluate(StoppingInputs(labels=stop_set.argmax(axis=2), stop_probabilities=stop_set))
    ou = {c.name: c for c in verdict.criteria}["overall_uncertainty"]
    assert math.isclose(ou.value, (math.log(2) - 0.9 * math.log(0.9) - 0.1 * math.log(0.1)) / 2)
    assert not ou.stop


def test_classification_change_counts_the_last_two_rounds() -> None:
    labels = np.array([[0, 0, 0, 0], [1, 1, 1, 1], [1, 1, 0, 1]])
    cc = {c.name: c for c in evaluate(StoppingInputs(labels=labels)).criteria}
    assert cc["classification_change"].value == 0.25 and not cc["classification_change"].stop
    loose = StoppingInputs(labels=labels, thresholds=Thresholds(max_change=0.25))
    assert {c.name: c for c in evaluate(loose).criteria}["classification_change"].stop


def _request(**fields: object) -> pb.CheckStoppingRequest:
    return pb.CheckStoppingRequest(**fields)  # type: ignore[arg-type]


LABELS = encode_tensor(np.array([[0, 1], [0, 1]], dtype=np.int64))
BAD_REQUESTS = [
    (_request(), "stop_set_predictions"),
    (_request(stop_set_predictions=encode_tensor(np.array([0, 1], dtype=np.int64))),
     "stop_set_predictions.shape"),
    (_request(stop_set_predictions=encode_tensor(np.array([[0, -1]], dtype=np.int32))),
     "stop_set_predictions"),
    (_request(stop_set_predictions=encode_tensor(np.array([[0.5, 0.5]]))),
     "stop_set_predictions.shape"),
    (_request(stop_set_predictions=encode_tensor(np.array([[[0.5, 0.6]]]))),
     "stop_set_predictions"),
    (_request(stop_set_predictions=encode_tensor(np.array([[[np.nan, 0.5]]]))),
     "stop_set_predictions"),
    (_request(pool_probabilities=encode_tensor(np.array([[1.0]]))), "pool_probabilities.shape"),
    (_request(stop_set_predictions=LABELS, kappa_threshold=1.5), "kappa_threshold"),
    (_request(stop_set_predictions=LABELS, kappa_threshold=0.0), "kappa_threshold"),
    (_request(stop_set_predictions=LABELS, kappa_window=0), "kappa_window"),
    (_request(stop_set_predictions=LABELS, uncertainty_threshold=-1.0), "uncertainty_threshold"),
    (_request(stop_set_predictions=LABELS, max_change_fraction=2.0), "max_change_fraction"),
    (_request(stop_set_predictions=LABELS, rule=7), "rule"),
    (_request(stop_set_predictions=LABELS, uncertainty_aggregate=9), "uncertainty_aggregate"),
]  # fmt: skip


@pytest.mark.parametrize(("message", "field"), BAD_REQUESTS)
def test_bad_requests_name_the_field(message: pb.CheckStoppingRequest, field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        decode_stopping(message, 1 << 20)
    assert caught.value.field == field


def test_decoded_defaults_are_the_papers() -> None:
    inputs = decode_stopping(_request(stop_set_predictions=LABELS), 1 << 20)
    defaults = Thresholds(
        kappa=0.99, window=3, uncertainty=0.01, aggregate="mean", max_change=0.0, rule="all"
    )
    assert inputs.thresholds == defaults
    assert inputs.labels is not None and inputs.labels.tolist() == [[0, 1], [0, 1]]
