"""onnx_runner: hostile models are refused before a session exists; good ones run in chunks,
cache by hash, give MC-dropout committees, and differentiate like finite differences."""

import subprocess
import sys
import time
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from labelwise_server import onnx_runner
from labelwise_server.errors import DeadlineExceeded, ModelNotCached, ModelRejected
from labelwise_server.onnx_runner import (
    MAX_MODELS,
    ModelCache,
    ModelLimits,
    ModelStore,
    load_model,
    run_models,
    sha256_hex,
)
from labelwise_server.strategies.adversarial import deepfool
from tests import onnx_models as om

LIMITS = ModelLimits(max_bytes=1 << 20, intra_op_threads=1)


def _never() -> None:
    return None


def _run(model_bytes: bytes | list[bytes], x: npt.NDArray[Any], **kwargs: Any) -> Any:
    blobs = model_bytes if isinstance(model_bytes, list) else [model_bytes]
    models = [load_model(b, LIMITS, f"models[{i}]") for i, b in enumerate(blobs)]
    options: dict[str, Any] = dict(embeddings_output="", mc_samples=0, seed=0, batch_rows=0,
                                   stop=_never, deadline=None)  # fmt: skip
    options.update(kwargs)
    return run_models(models, [f"models[{i}]" for i in range(len(blobs))], x, **options)


REJECTED = [
    ("malformed bytes", b"\x08\x07not an onnx model\xff\xff", "MODEL_MALFORMED"),
    ("empty bytes", b"", "MODEL_MALFORMED"),
    ("external data ../../etc/passwd", om.external_data_model(4, 3), "MODEL_EXTERNAL_DATA"),
    ("external data in a Constant", om.external_constant_model(4, 3), "MODEL_EXTERNAL_DATA"),
    ("custom op domain", om.custom_op_model(4, 3), "MODEL_CUSTOM_OP"),
    ("com.microsoft contrib op", om.contrib_op_model(4, 3), "MODEL_CUSTOM_OP"),
    ("opset 99", om.new_opset_model(4, 3), "MODEL_VERSION"),
    ("oversize", om.padded_model(4, 3, 2 << 20), "MODEL_TOO_LARGE"),
    ("fixed batch size", om.fixed_batch_model(4, 3), "MODEL_SIGNATURE"),
]


@pytest.mark.parametrize(("case", "data", "reason"), REJECTED, ids=[r[0] for r in REJECTED])
def test_hostile_models_are_refused_with_the_reason(case: str, data: bytes, reason: str) -> None:
    with pytest.raises(ModelRejected) as caught:
        load_model(data, LIMITS, "models[0].onnx")
    assert caught.value.reason == reason
    assert caught.value.field == "models[0].onnx"


def test_external_data_is_refused_before_any_file_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[str] = []
    real_open = open

    def spy(path: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", spy)
    with pytest.raises(ModelRejected, match="etc/passwd"):
        load_model(om.external_data_model(4, 3), LIMITS, "models[0].onnx")
    assert not [p for p in opened if "passwd" in p]


def test_wrong_input_width_names_model_inputs() -> None:
    with pytest.raises(ModelRejected) as caught:
        _run(om.Linear.random(np.random.default_rng(0), 4, 3).onnx(), np.zeros((5, 6), np.float32))
    assert caught.value.field == "model_inputs.shape"
    assert caught.value.reason == "MODEL_INPUT_MISMATCH"
    assert "d = 4" in caught.value.description


def test_nan_outputs_are_refused_naming_the_model() -> None:
    with pytest.raises(ModelRejected) as caught:
        _run(om.nan_model(4, 3), np.zeros((5, 4), np.float32))
    assert caught.value.field == "models[0]" and caught.value.reason == "MODEL_NON_FINITE_OUTPUT"


def test_outputs_equal_numpy_in_any_chunking() -> None:
    rng = np.random.default_rng(1)
    mlp = om.Mlp.random(rng, d=8, h=6, c=3)
    x = rng.normal(size=(103, 8)).astype(np.float32)
    whole = _run(mlp.onnx(), x, embeddings_output="hidden")
    chunked = _run(mlp.onnx(), x, embeddings_output="hidden", batch_rows=10)
    np.testing.assert_array_equal(whole.scores, chunked.scores)
    np.testing.assert_array_equal(whole.embeddings, chunked.embeddings)
    np.testing.assert_allclose(whole.scores, mlp.probabilities(x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(whole.embeddings, mlp.hidden(x), rtol=1e-5, atol=1e-6)


def test_an_ensemble_gives_one_member_per_model() -> None:
    rng = np.random.default_rng(2)
    members = [om.Linear.random(rng, 5, 4) for _ in range(3)]
    x = rng.normal(size=(20, 5)).astype(np.float32)
    out = _run([m.onnx() for m in members], x)
    assert out.scores.shape == (3, 20, 4)
    for member, scores in zip(members, out.scores, strict=True):
        z = member.logits(x)
        expected = np.exp(z - z.max(1, keepdims=True))
        np.testing.assert_allclose(scores, expected / expected.sum(1, keepdims=True), rtol=1e-5)


@pytest.mark.parametrize("training_input", [True, False], ids=["training_mode-input", "exported"])
def test_mc_dropout_samples_differ_and_repeat_with_the_seed(training_input: bool) -> None:
    data = om.dropout_model(np.random.default_rng(3), 6, 3, training_input=training_input)
    x = np.random.default_rng(4).normal(size=(40, 6)).astype(np.float32)
    first = _run(data, x, mc_samples=5, seed=11).scores
    assert first.shape == (5, 40, 3)
    for a in range(5):
        for b in range(a + 1, 5):
            assert not np.allclose(first[a], first[b]), (a, b)
    np.testing.assert_array_equal(first, _run(data, x, mc_samples=5, seed=11).scores)
    assert not np.array_equal(first, _run(data, x, mc_samples=5, seed=12).scores)
    np.testing.assert_allclose(first.sum(axis=2), 1.0, rtol=1e-5)


def test_mc_dropout_needs_a_dropout_node() -> None:
    with pytest.raises(ModelRejected, match="Dropout"):
        _run(om.Linear.random(np.random.default_rng(5), 3, 2).onnx(), np.zeros((4, 3)),
             mc_samples=3)  # fmt: skip


def test_the_inference_deadline_is_checked_between_chunks() -> None:
    data = om.Linear.random(np.random.default_rng(6), 3, 2).onnx()
    with pytest.raises(DeadlineExceeded):
        _run(data, np.zeros((50, 3), np.float32), batch_rows=5, deadline=time.monotonic() - 1)
    calls: list[int] = []

    def stop() -> None:
        calls.append(1)
        if len(calls) > 3:
            raise DeadlineExceeded()

    with pytest.raises(DeadlineExceeded):
        _run(data, np.zeros((50, 3), np.float32), batch_rows=5, stop=stop)
    assert len(calls) == 4  # stopped after three chunks of ten


def test_the_cache_is_lru_and_bounded_in_bytes() -> None:
    rng = np.random.default_rng(7)
    blobs = [om.Linear.random(rng, 30, 10).onnx() for _ in range(3)]
    models = [load_model(b, LIMITS, "m") for b in blobs]
    for model in models:  # the measured session memory varies with the process: bytes only here
        model.session_bytes = 0
    cache = ModelCache(max_bytes=len(blobs[0]) + len(blobs[1]) + 10)
    cache.put(models[0])
    cache.put(models[1])
    assert cache.get(models[0].sha256) is models[0]  # 0 is now the most recent
    cache.put(models[2])  # evicts 1, the least recently used
    assert cache.get(models[1].sha256) is None
    assert cache.get(models[0].sha256) is models[0] and cache.get(models[2].sha256) is models[2]
    assert cache.nbytes <= cache.max_bytes and len(cache) == 2
    tiny = ModelCache(max_bytes=10)
    tiny.put(models[0])  # larger than the whole cache: not kept
    assert len(tiny) == 0


def test_the_store_resolves_bytes_then_hash_and_misses_with_not_cached() -> None:
    data = om.Linear.random(np.random.default_rng(8), 3, 2).onnx()
    store = ModelStore(LIMITS, cache_bytes=1 << 20)
    digest = sha256_hex(data)
    with pytest.raises(ModelNotCached) as caught:
        store.resolve(None, digest, "models[0]")
    assert caught.value.sha256 == digest and caught.value.field == "models[0].sha256"
    model = store.resolve(data, None, "models[0]")
    assert store.resolve(None, digest, "models[0]") is model
    assert store.resolve(data, None, "models[0]") is model  # checked once
    with pytest.raises(ModelRejected, match="64 lowercase hex"):
        store.resolve(None, "ABC", "models[0]")
    uncached = ModelStore(LIMITS, cache_bytes=0)
    uncached.resolve(data, None, "models[0]")
    with pytest.raises(ModelNotCached):
        uncached.resolve(None, digest, "models[0]")


def _finite_differences(f: Any, x: npt.NDArray[np.float64], h: float = 1e-6) -> Any:
    """Central differences of f [b, c] w.r.t. x [b, d]: [b, c, d]."""
    jac = np.empty((x.shape[0], f(x).shape[1], x.shape[1]))
    for j in range(x.shape[1]):
        step = np.zeros_like(x)
        step[:, j] = h
        jac[:, :, j] = (f(x + step) - f(x - step)) / (2 * h)
    return jac


@pytest.mark.parametrize("activation", ["Tanh", "Relu"])
def test_the_gradient_of_an_onnx_mlp_matches_finite_differences(activation: str) -> None:
    rng = np.random.default_rng(9)
    mlp = om.Mlp.random(rng, d=5, h=7, c=4, activation=activation)
    model = load_model(mlp.onnx(), LIMITS, "models[0]")
    gradient = model.gradient("models[0]", "probabilities", output_is_probabilities=True)
    x = rng.normal(size=(25, 5))
    logits, jac = gradient(x)
    # The final Softmax is stripped: its input, the logits, is what deepfool walks on.
    np.testing.assert_allclose(logits, mlp.logits(x), rtol=1e-12)
    np.testing.assert_allclose(jac, _finite_differences(mlp.logits, x), rtol=1e-5, atol=1e-7)


def test_deepfool_through_the_onnx_mlp_agrees_with_a_float64_reference() -> None:
    rng = np.random.default_rng(10)
    mlp = om.Mlp.random(rng, d=6, h=10, c=3)
    model = load_model(mlp.onnx(), LIMITS, "models[0]")
    gradient = model.gradient("models[0]", "probabilities", output_is_probabilities=True)
    x = rng.normal(size=(80, 6))

    def reference(v: npt.NDArray[np.float64]) -> tuple[Any, Any]:
        return mlp.logits(v), _finite_differences(mlp.logits, v)

    ours, _ = deepfool(gradient, x)
    theirs, _ = deepfool(reference, x)
    np.testing.assert_allclose(ours, theirs, rtol=1e-2)  # the bar; observed ~1e-8
    assert np.max(np.abs(ours - theirs) / theirs) < 1e-6


def test_deepfool_refuses_an_operator_it_cannot_differentiate() -> None:
    model = load_model(om.unsupported_gradient_model(3, 2), LIMITS, "models[0]")
    with pytest.raises(ModelRejected) as caught:
        model.gradient("models[0]", "p", output_is_probabilities=True)
    assert caught.value.reason == "UNSUPPORTED_GRADIENT_OP" and "Abs" in caught.value.description


def test_the_gradient_of_a_cnn_head_matches_finite_differences_and_its_forward_ort() -> None:
    """Reshape, Conv, Gelu, MaxPool, LayerNormalization, AveragePool, Flatten, Gemm."""
    rng = np.random.default_rng(11)
    cnn = om.Cnn.random(rng)
    model = load_model(cnn.onnx(), LIMITS, "models[0]")
    gradient = model.gradient("models[0]", "logits", output_is_probabilities=False)
    x = rng.normal(size=(4, 64))
    logits, jac = gradient(x)
    ort = _run(cnn.onnx(), x.astype(np.float32)).scores
    np.testing.assert_allclose(logits, ort, rtol=1e-4, atol=1e-4)

    def forward(v: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return gradient(v)[0]

    np.testing.assert_allclose(jac, _finite_differences(forward, x), rtol=1e-5, atol=1e-6)
    assert gradient.chunk_rows(64, 3) >= 100  # its memory bound leaves real chunks


def test_a_sklearn_pipeline_with_a_scaler_differentiates_to_the_closed_form() -> None:
    """StandardScaler + LogisticRegression (Scaler, LinearClassifier, Normalizer) from skl2onnx."""
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(12)
    x = (rng.normal(size=(120, 4)) * [1.0, 3.0, 0.5, 2.0]).astype(np.float32)
    y = (x[:, 0] + x[:, 1] / 3 > 0).astype(int) + (x[:, 2] > 0.3)
    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)
    data = to_onnx(pipe, x[:1], options={id(pipe[-1]): {"zipmap": False}}).SerializeToString()
    model = load_model(data, LIMITS, "models[0]")
    gradient = model.gradient("models[0]", "probabilities", output_is_probabilities=True)
    ops = {node.op for node in gradient.nodes}
    assert {"ai.onnx.ml.Scaler", "ai.onnx.ml.LinearClassifier"} <= ops
    distance, _ = deepfool(gradient, x.astype(np.float64))
    w = pipe[-1].coef_ / pipe[0].scale_  # the decision function in the raw inputs
    z = pipe.decision_function(x.astype(np.float64))
    label = z.argmax(1)
    expected = [min(abs(z[i, j] - z[i, label[i]]) / np.linalg.norm(w[j] - w[label[i]])
                    for j in range(3) if j != label[i]) for i in range(len(x))]  # fmt: skip
    np.testing.assert_allclose(distance, expected, rtol=1e-3)


# ---- Limits checked before allocation (issue 13) -------------------------------------------


def _refused(model_bytes: bytes | list[bytes], x: npt.NDArray[Any], **kwargs: Any) -> ModelRejected:
    with pytest.raises(ModelRejected) as caught:
        _run(model_bytes, x, **kwargs)
    return caught.value


def _peak_mib(setup: str, call: str) -> tuple[str, float]:
    """Run setup, then call, in a fresh interpreter: what call raised (its reason, or "ok")
    and how far the process's peak resident memory rose during call, in MiB."""
    code = "\n".join([
        "import resource, sys, time", "import numpy as np",
        "from labelwise_server.errors import ModelRejected",
        "from labelwise_server.onnx_runner import ModelLimits, load_model, run_models",
        "from tests import onnx_models as om", setup,
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss",
        "try:", f"    {call}", "    outcome = 'ok'",
        "except ModelRejected as err:", "    outcome = err.reason",
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss",
        "print(outcome, (after - before) / 1024)",
    ])  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    outcome, peak = done.stdout.split()
    return outcome, float(peak)


_RUN = (
    "run_models([model], ['models[0]'], x, embeddings_output='', mc_samples=0, seed=0, "
    "batch_rows=0, stop=lambda: None, deadline=None)"
)


def test_a_static_class_width_too_large_for_the_pool_is_refused_before_running() -> None:
    # 2^20 classes on 400 rows: 3.3 GB before this check; refused with no run at all.
    outcome, peak = _peak_mib(
        "model = load_model(om.wide_output_model(4, 1 << 20), ModelLimits(), 'models[0]')\n"
        "x = np.ones((400, 4), np.float32)",
        _RUN,
    )
    assert outcome == "MODEL_OUTPUT_TOO_LARGE"
    assert peak < 64


def test_a_value_sized_output_is_measured_on_one_row_and_refused() -> None:
    # Width = max(x) = 100,000 on 4,000 rows: 1.6 GB of scores; the one-row probe takes 0.4 MB.
    outcome, peak = _peak_mib(
        "model = load_model(om.value_sized_model(4), ModelLimits(), 'models[0]')\n"
        "x = np.full((4000, 4), 100000.0, np.float32)",
        _RUN,
    )
    assert outcome == "MODEL_OUTPUT_TOO_LARGE"
    assert peak < 64


@pytest.mark.parametrize(
    "data",
    [om.tile_model(4, 1000), om.resize_model(4, 1000.0)],
    ids=["tile", "resize"],
)
def test_outputs_growing_with_the_rows_are_refused_on_the_probe(data: bytes) -> None:
    err = _refused(data, np.ones((100, 4), np.float32), max_elements=100_000)
    assert err.reason == "MODEL_OUTPUT_TOO_LARGE"
    assert err.field == "models[0]"
    assert "100000" in err.description and "400000" in err.description


def test_a_committee_is_held_to_the_limit_as_m_n_c() -> None:
    rng = np.random.default_rng(3)
    data = om.Linear.random(rng, 4, 50).onnx()
    x = np.ones((100, 4), np.float32)
    assert _run([data] * 2, x, max_elements=10_000).scores.shape == (2, 100, 50)
    err = _refused([data] * 3, x, max_elements=10_000)  # 3 * 100 * 50 = 15,000
    assert (err.reason, err.field) == ("MODEL_OUTPUT_TOO_LARGE", "models[0]")
    assert "[m, n, c] = [3, 100, 50]" in err.description


def test_mc_dropout_samples_count_as_committee_members() -> None:
    data = om.dropout_model(np.random.default_rng(1), 4, 25, training_input=False)
    x = np.ones((100, 4), np.float32)
    err = _refused(data, x, mc_samples=5, max_elements=10_000)  # 5 * 100 * 25
    assert err.reason == "MODEL_OUTPUT_TOO_LARGE"


def test_the_embeddings_output_is_held_to_the_limit_too() -> None:
    rng = np.random.default_rng(4)
    data = om.Mlp.random(rng, 4, 64, 3).onnx()
    x = np.ones((100, 4), np.float32)
    err = _refused(data, x, embeddings_output="hidden", max_elements=5_000)  # 100 * 64
    assert err.reason == "MODEL_OUTPUT_TOO_LARGE"
    assert "'hidden'" in err.description


def test_more_than_max_models_are_refused() -> None:
    data = om.Linear.random(np.random.default_rng(5), 4, 3).onnx()
    model = load_model(data, LIMITS, "models[0]")
    with pytest.raises(ModelRejected) as caught:
        run_models([model] * (MAX_MODELS + 1), [f"models[{i}]" for i in range(MAX_MODELS + 1)],
                   np.ones((2, 4), np.float32), embeddings_output="", mc_samples=0, seed=0,
                   batch_rows=0, stop=_never, deadline=None)  # fmt: skip
    assert caught.value.reason == "TOO_MANY_MODELS"


def test_a_chunk_over_the_byte_budget_is_refused_when_asked_for_and_shrunk_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(onnx_runner, "MAX_CHUNK_OUTPUT_BYTES", 64 * 1024)
    rng = np.random.default_rng(6)
    data = om.Linear.random(rng, 4, 1000).onnx()  # 8,000 bytes of output a row at most
    x = rng.normal(size=(40, 4)).astype(np.float32)
    err = _refused(data, x, batch_rows=20)
    assert (err.field, err.reason) == ("inference_batch_rows", "MODEL_OUTPUT_TOO_LARGE")
    expected = _run(data, x, batch_rows=4).scores
    np.testing.assert_array_equal(_run(data, x).scores, expected)  # default chunk shrank


@pytest.mark.parametrize("in_if", [False, True], ids=["main graph", "inside If"])
def test_a_constant_tensor_over_the_limit_is_refused_on_load(in_if: bool) -> None:
    data = om.constant_bomb_model(4, [1 << 16, 1 << 14], in_if=in_if)  # 4 GiB of float
    with pytest.raises(ModelRejected) as caught:
        load_model(data, LIMITS, "models[0].onnx")
    assert caught.value.reason == "MODEL_WORKING_MEMORY_TOO_LARGE"
    small = load_model(om.constant_bomb_model(4, [8, 8], in_if=in_if), LIMITS, "models[0].onnx")
    assert _run_loaded(small, np.ones((3, 4), np.float32)).scores.shape == (3, 4)


def _run_loaded(model: Any, x: npt.NDArray[Any]) -> Any:
    return run_models([model], ["models[0]"], x, embeddings_output="", mc_samples=0, seed=0,
                      batch_rows=0, stop=_never, deadline=None)  # fmt: skip


def test_runtime_errors_reach_callers_without_source_paths_or_signatures() -> None:
    err = _refused(om.reshape_failure_model(4), np.ones((3, 4), np.float32))
    assert err.reason == "MODEL_RUN_FAILED"
    assert "/" not in err.description and "::" not in err.description
    assert "onnxruntime" not in err.description.lower().replace("onnx runtime", "")
    assert "Reshape node" in err.description
    assert len(err.description) < 260


def test_runtime_message_keeps_one_bounded_sentence() -> None:
    raw = (
        "[ONNXRuntimeError] : 1 : FAIL : Non-zero status code returned while running Tile node."
        " Name:'t' Status Message: /onnxruntime_src/onnxruntime/core/framework/op_kernel.cc:83 "
        "onnxruntime::MLDataType onnxruntime::OpKernelContext::OutputMLValue(int, const "
        "onnxruntime::TensorShape&) status.IsOK() was false. Failed to allocate memory for "
        "requested buffer of size 4000000000\n" + "x" * 5000
    )
    text = onnx_runner.runtime_message(RuntimeError(raw))
    assert text.startswith("Tile node: Failed to allocate memory")
    assert "/" not in text and "::" not in text and "was false" not in text
    assert len(text) <= onnx_runner.MAX_MESSAGE_CHARS


def test_runtime_message_unwraps_a_status_inside_a_status() -> None:
    raw = (
        "[ONNXRuntimeError] : 10 : INVALID_GRAPH : /onnxruntime_src/onnxruntime/core/graph/"
        "model.cc:340 onnxruntime::Model::Model(onnx::ModelProto&&, const "
        "onnxruntime::PathString&, const onnxruntime::logging::Logger&) [ONNXRuntimeError] : 10 :"
        " INVALID_GRAPH : Model local function definitions must not be recursive.\n"
    )
    text = onnx_runner.runtime_message(RuntimeError(raw))
    assert text == "Model local function definitions must not be recursive."


def test_a_graph_that_loops_past_the_deadline_is_terminated_by_onnx_runtime() -> None:
    """RunOptions.terminate ends the run, in process, within a poll of the deadline."""
    from tests.hostile.models import loop_bomb

    model = load_model(loop_bomb(4, 3), LIMITS, "models[0]")
    x = np.ones((8, 4), np.float32)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        run_models([model], ["models[0]"], x, embeddings_output="", mc_samples=0, seed=0,
                   batch_rows=0, stop=lambda: None, deadline=started + 0.5)  # fmt: skip
    assert time.monotonic() - started < 1.0


def test_the_gradient_pass_checks_its_stop_between_nodes() -> None:
    cnn = om.Cnn.random(np.random.default_rng(13))
    model = load_model(cnn.onnx(), LIMITS, "models[0]")
    gradient = model.gradient("models[0]", "logits", output_is_probabilities=False)
    checks: list[int] = []

    def check() -> None:
        checks.append(1)
        if len(checks) > 5:
            raise DeadlineExceeded()

    with pytest.raises(DeadlineExceeded):
        gradient(np.zeros((2, 64)), check)
    assert len(checks) == 6  # the sixth of the eight nodes' forward steps


def test_the_gradient_of_a_hand_written_attention_head_matches_finite_differences() -> None:
    rng = np.random.default_rng(14)
    data = om.attention_head_model(rng)
    model = load_model(data, LIMITS, "models[0]")
    gradient = model.gradient("models[0]", "logits", output_is_probabilities=False)
    x = rng.normal(size=(5, 24))
    logits, jac = gradient(x)
    np.testing.assert_allclose(logits, _run(data, x.astype(np.float32)).scores, rtol=1e-4,
                               atol=1e-4)  # fmt: skip

    def forward(v: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return gradient(v)[0]

    np.testing.assert_allclose(jac, _finite_differences(forward, x), rtol=1e-5, atol=1e-6)
