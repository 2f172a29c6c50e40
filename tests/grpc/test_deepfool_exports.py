"""deepfool through the service on the models users export: scikit-learn models converted by
skl2onnx (zipmap=False) and a CNN head built with the onnx helper API.

Linear models against their closed-form distances; SVC-rbf and the MLP against a float64
DeepFool on scikit-learn's own parameters (tests/strategies/test_adversarial.naive_deepfool);
tree ensembles, which have no gradient, by the decision method: every point flips the
model's prediction, and on 2-D and 3-D problems the distance is within 1.5× of a brute-force
grid search's.
"""

import warnings
from typing import Any

import grpc
import numpy as np
import numpy.typing as npt
import pytest

from labelwise.v1 import query_selection_pb2 as pb
from labelwise.v1 import query_selection_pb2_grpc as pb_grpc
from labelwise_server.tensors import encode_tensor
from tests import onnx_models as om
from tests.adversarial_references import (
    class_output,
    grid_distance,
    linear_closed_form,
    mlp_reference,
    rbf_svc_reference,
)
from tests.grpc.test_servicer import call_error

F32 = pb.DATA_TYPE_FLOAT32
K = 15
FloatArray = npt.NDArray[np.float64]


@pytest.fixture(scope="module")
def stub(channel: grpc.Channel) -> pb_grpc.QuerySelectionServiceStub:
    return pb_grpc.QuerySelectionServiceStub(channel)  # type: ignore[no-untyped-call]


def _data(d: int, classes: int, n: int = 150, seed: int = 0) -> tuple[Any, Any]:
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n,
        d,
        n_informative=d,
        n_redundant=0,
        n_classes=classes,
        n_clusters_per_class=1,
        random_state=seed,
    )
    return x.astype(np.float32), y


def _export(clf: Any, x: npt.NDArray[np.float32]) -> bytes:
    from skl2onnx import to_onnx
    from sklearn.svm import LinearSVC

    options = {} if isinstance(clf, LinearSVC) else {"zipmap": False}
    return to_onnx(clf, x[:1], options={id(clf): options}).SerializeToString()  # type: ignore[no-any-return]


def _deepfool(
    stub: Any, data: bytes, x: npt.NDArray[np.float32], *, logits: bool, **params: Any
) -> tuple[Any, FloatArray]:
    values = {"return_points": pb.ParamValue(bool_value=True)}
    for name, value in params.items():
        values[name] = (pb.ParamValue(string_value=value) if isinstance(value, str)
                        else pb.ParamValue(int_value=value))  # fmt: skip
    message = pb.SelectQueriesRequest(
        strategies=[pb.StrategySpec(name="deepfool", params=values)],
        k=K,
        seed=7,
        models=[pb.Model(onnx=data)],
        model_inputs=encode_tensor(x, F32),
        model_output=pb.MODEL_OUTPUT_LOGITS if logits else pb.MODEL_OUTPUT_PROBABILITIES,
    )
    [result] = stub.SelectQueries(message, timeout=120).results
    points = np.frombuffer(result.adversarial_points.raw_data, "<f8").reshape(
        tuple(result.adversarial_points.shape)
    )
    return result, points


def _assert_points_flip(
    data: bytes, x: npt.NDArray[np.float32], result: Any, points: FloatArray
) -> None:
    indices = np.asarray(result.indices)
    assert points.shape == (len(indices), x.shape[1]) and np.isfinite(points).all()
    before = class_output(data, x[indices]).argmax(1)
    after = class_output(data, points).argmax(1)
    assert (after != before).all()
    distances = np.linalg.norm(points - x[indices].astype(np.float64), axis=1)
    assert (distances > 0).all()


def _check_ranking(result: Any, expected: FloatArray, rtol: float) -> None:
    """The service's top K against -expected (ties aside), and each score to rtol."""
    indices = np.asarray(result.indices)
    np.testing.assert_allclose(-np.asarray(result.scores), expected[indices], rtol=rtol)
    best = np.sort(expected)[:K]
    np.testing.assert_allclose(np.sort(-np.asarray(result.scores)), best, rtol=rtol)


@pytest.fixture(scope="module")
def linear_models() -> dict[str, tuple[bytes, npt.NDArray[np.float32], FloatArray, bool]]:
    """name -> (onnx, pool, closed-form distances, logits output)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import SVC, LinearSVC

    out = {}
    xb, yb = _data(4, 2)
    xm, ym = _data(4, 3, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lr_binary = LogisticRegression().fit(xb, yb)
        w = lr_binary.coef_.astype(np.float64)
        out["logistic_regression_binary"] = (
            _export(lr_binary, xb), xb,
            np.abs(xb @ w[0] + lr_binary.intercept_[0]) / np.linalg.norm(w[0]), False)  # fmt: skip
        lr_multi = LogisticRegression().fit(xm, ym)
        out["logistic_regression_multiclass"] = (
            _export(lr_multi, xm), xm,
            linear_closed_form(lr_multi.decision_function, lr_multi.coef_, xm.astype(np.float64)),
            False)  # fmt: skip
        svc = LinearSVC().fit(xm, ym)
        out["linear_svc"] = (
            _export(svc, xm),
            xm,
            linear_closed_form(svc.decision_function, svc.coef_, xm.astype(np.float64)),
            True,
        )
        svc_linear = SVC(kernel="linear").fit(xb, yb)
        w = svc_linear.coef_[0].astype(np.float64)
        out["svc_linear"] = (
            _export(svc_linear, xb),
            xb,
            np.abs(svc_linear.decision_function(xb.astype(np.float64))) / np.linalg.norm(w),
            True,
        )
    return out


@pytest.mark.parametrize("name", ["logistic_regression_binary", "logistic_regression_multiclass",
                                  "linear_svc", "svc_linear"])  # fmt: skip
def test_linear_exports_match_the_closed_form(stub: Any, linear_models: Any, name: str) -> None:
    data, x, expected, logits = linear_models[name]
    result, points = _deepfool(stub, data, x, logits=logits)
    assert result.adversarial_method == "gradient"
    _check_ranking(result, expected, rtol=1e-3)
    _assert_points_flip(data, x, result, points)


def test_the_decision_method_on_a_linear_export_is_near_the_closed_form(
    stub: Any, linear_models: Any
) -> None:
    data, x, expected, _ = linear_models["logistic_regression_multiclass"]
    result, points = _deepfool(stub, data, x, logits=False, method="decision")
    assert result.adversarial_method == "decision"
    _assert_points_flip(data, x, result, points)
    distance = -np.asarray(result.scores)
    truth = expected[np.asarray(result.indices)]
    assert (distance >= truth * (1 - 1e-4)).all()  # no point nearer than the boundary itself
    assert np.median(distance / truth) < 1.02


def test_svc_rbf_and_mlp_exports_match_a_float64_reference(stub: Any) -> None:
    from sklearn.neural_network import MLPClassifier
    from sklearn.svm import SVC

    xb, yb = _data(4, 2, seed=2)
    xm, ym = _data(5, 3, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        svc = SVC(kernel="rbf", gamma=0.3).fit(xb, yb)
        mlp = MLPClassifier(hidden_layer_sizes=(12,), max_iter=300, random_state=0).fit(xm, ym)
    for clf, x, reference, logits in (
        (svc, xb, rbf_svc_reference, True),
        (mlp, xm, mlp_reference, False),
    ):
        data = _export(clf, x)
        result, points = _deepfool(stub, data, x, logits=logits)
        assert result.adversarial_method == "gradient"
        expected = reference(clf, x[np.asarray(result.indices)].astype(np.float64))
        np.testing.assert_allclose(-np.asarray(result.scores), expected, rtol=1e-2)
        _assert_points_flip(data, x, result, points)


@pytest.mark.parametrize(("kind", "d"), [("random_forest", 2), ("gradient_boosting", 3)])
def test_tree_ensembles_use_the_decision_method_within_1_5x_of_a_grid_search(
    stub: Any, kind: str, d: int
) -> None:
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier

    x, y = _data(d, 3 if kind == "gradient_boosting" else 2, n=120, seed=4)
    clf = (RandomForestClassifier(n_estimators=15, max_depth=5, random_state=0)
           if kind == "random_forest" else
           GradientBoostingClassifier(n_estimators=15, random_state=0))  # fmt: skip
    clf.fit(x, y)
    data = _export(clf, x)
    result, points = _deepfool(stub, data, x, logits=False, max_queries=600)
    assert result.adversarial_method == "decision"
    _assert_points_flip(data, x, result, points)
    indices = np.asarray(result.indices)
    distance = -np.asarray(result.scores)
    np.testing.assert_allclose(distance, np.linalg.norm(points - x[indices], axis=1), rtol=1e-9)
    grid = grid_distance(data, x[indices], distance, 201 if d == 2 else 41)
    assert np.isfinite(grid).mean() >= 0.8  # the grid resolves most boundaries
    assert (distance <= 1.5 * grid).all(), np.max(distance / grid)


def test_the_method_is_auto_by_default_and_gradient_refuses_a_tree(stub: Any) -> None:
    from sklearn.ensemble import RandomForestClassifier

    x, y = _data(3, 2, n=60, seed=5)
    data = _export(RandomForestClassifier(n_estimators=3, random_state=0).fit(x, y), x)
    message = pb.SelectQueriesRequest(
        strategies=[pb.StrategySpec(name="deepfool",
                                    params={"method": pb.ParamValue(string_value="gradient")})],
        k=3, models=[pb.Model(onnx=data)], model_inputs=encode_tensor(x, F32),
    )  # fmt: skip
    error = call_error(lambda: stub.SelectQueries(message, timeout=60))
    assert "UNSUPPORTED_GRADIENT_OP" in str(error.trailing_metadata()) or "TreeEnsemble" in str(
        error.details()
    )
    assert "TreeEnsembleClassifier" in str(error.details())


def test_a_cnn_head_runs_on_its_gradient_and_every_point_flips(stub: Any, client: Any) -> None:
    rng = np.random.default_rng(8)
    cnn = om.Cnn.random(rng)
    x = rng.normal(size=(60, 64)).astype(np.float32)
    data = cnn.onnx()
    result, points = _deepfool(stub, data, x, logits=True)
    assert result.adversarial_method == "gradient"
    _assert_points_flip(data, x, result, points)
    picks = client.select(strategies=["deepfool"], k=5, model=data, model_inputs=x,
                          model_output="logits")  # fmt: skip
    assert picks["deepfool"].adversarial_method == "gradient"
    assert list(picks["deepfool"].indices) == list(result.indices)[:5]


def test_gradient_memory_is_bounded_before_allocating_and_auto_falls_back(stub: Any) -> None:
    data = om.wide_conv_model(8, 400, 100)  # 25,600 values a row, for 100 classes
    x = np.random.default_rng(9).normal(size=(16, 64)).astype(np.float32)
    message = pb.SelectQueriesRequest(
        strategies=[pb.StrategySpec(name="deepfool",
                                    params={"method": pb.ParamValue(string_value="gradient")})],
        k=2, models=[pb.Model(onnx=data)], model_inputs=encode_tensor(x, F32),
        model_output=pb.MODEL_OUTPUT_LOGITS,
    )  # fmt: skip
    error = call_error(lambda: stub.SelectQueries(message, timeout=60))
    assert "bytes of gradients per pool row" in str(error.details())
    result, points = _deepfool(stub, data, x, logits=True, max_queries=200)
    assert result.adversarial_method == "decision"
    _assert_points_flip(data, x, result, points)


def test_the_decision_method_honours_the_inference_deadline(stub: Any) -> None:
    import time

    from sklearn.ensemble import RandomForestClassifier

    x, y = _data(3, 2, n=400, seed=6)
    data = _export(RandomForestClassifier(n_estimators=5, random_state=0).fit(x, y), x)
    message = pb.SelectQueriesRequest(
        strategies=[pb.StrategySpec(name="deepfool",
                                    params={"max_queries": pb.ParamValue(int_value=100_000)})],
        k=3, models=[pb.Model(onnx=data)], model_inputs=encode_tensor(x, F32),
        inference_timeout_seconds=1.0,
    )  # fmt: skip
    started = time.monotonic()
    error = call_error(lambda: stub.SelectQueries(message, timeout=120))
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 20  # 40 million evaluations asked for; stopped at 1 s
