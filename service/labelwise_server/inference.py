"""The inference stage, between validation and selection: run the caller's models.

A validated Selection in model mode carries a ModelRun; infer resolves its models in the
ModelStore, runs them on the input rows (labelwise_server.onnx_runner) and hands selection
the same checked arrays a caller would have sent: probabilities (softmax of logits at the
temperature, or probabilities held to the row-sum check), a committee for several models
or dropout runs, embeddings from embeddings_output, and the model itself for strategies
that work through it. Model faults are ModelRejected, naming the model's field.
"""

import time
from dataclasses import replace

import numpy as np

from labelwise.v1 import query_selection_pb2 as pb
from labelwise_server import reasons
from labelwise_server.checks import (
    SUM_TOLERANCE,
    check_embedding_values,
    check_row_stochastic,
    softmax,
)
from labelwise_server.decode.embeddings import check_labeled_width
from labelwise_server.errors import DeadlineExceeded, InvalidArgument, ModelRejected
from labelwise_server.onnx_runner import (
    ModelStore,
    OnnxModel,
    class_output,
    predictor,
    run_models,
)
from labelwise_server.request import ModelAccess, ModelRun, Selection
from labelwise_server.strategies._types import FloatArray, RealArray, StopCheck, never_stop


def infer(
    selection: Selection,
    store: ModelStore,
    stop: StopCheck = never_stop,
    max_elements: int = 1 << 28,
) -> Selection:
    """selection with its models' outputs in the pool; unchanged when it has no models."""
    run = selection.models
    if run is None:
        return selection
    deadline = None if run.timeout is None else time.monotonic() + run.timeout
    fields = [source.field for source in run.models]
    loaded: list[OnnxModel] = [
        store.resolve(source.onnx, source.sha256, source.field) for source in run.models
    ]
    outputs = run_models(
        loaded,
        fields,
        run.inputs,
        embeddings_output=run.embeddings_output,
        mc_samples=run.mc_samples,
        seed=run.seed,
        batch_rows=run.batch_rows,
        stop=stop,
        deadline=deadline,
        max_elements=max_elements,
    )
    scores = outputs.scores
    if run.logits:
        probabilities_all: RealArray = softmax(scores, run.temperature)
    else:
        members = scores if scores.ndim == 3 else scores[None]
        for i, member in enumerate(members):
            where = fields[0] if run.mc_samples else fields[i]
            try:
                check_row_stochastic(member, where, SUM_TOLERANCE[pb.DATA_TYPE_FLOAT32])
            except InvalidArgument as err:
                raise ModelRejected(
                    where,
                    f"class output {err.description} (model_output is PROBABILITIES; set "
                    "MODEL_OUTPUT_LOGITS if the model returns logits)",
                    reason=reasons.MODEL_OUTPUT_NOT_PROBABILITIES,
                ) from err
        probabilities_all = scores
    committee: RealArray | None = None
    if probabilities_all.ndim == 3:
        committee = probabilities_all
        probabilities: RealArray = committee.mean(axis=0, dtype=committee.dtype)
    else:
        probabilities = probabilities_all
    pool = selection.pool
    embeddings = pool.embeddings
    if outputs.embeddings is not None:
        check_embedding_values(outputs.embeddings, "embeddings_output")
        embeddings = outputs.embeddings
        if pool.labeled_embeddings is not None:
            check_labeled_width(
                pool.labeled_embeddings, embeddings, "the models' embeddings_output"
            )
    access = None
    if run.needs_model:
        first = scores if scores.ndim == 2 else scores[0]
        access = _model_access(run, loaded[0], first if not run.mc_samples else scores, stop,
                               deadline)  # fmt: skip
    pool = replace(
        pool, probabilities=probabilities, committee=committee, embeddings=embeddings, model=access
    )
    return replace(selection, pool=pool, models=None)


# Pool rows on which the gradient pass must agree with ONNX Runtime before deepfool trusts it.
AGREEMENT_ROWS = 8
AGREEMENT_TOLERANCE = 1e-3  # absolute and relative, on the class output (float32 models)


def _model_access(
    run: ModelRun,
    model: OnnxModel,
    scores: RealArray,
    stop: StopCheck,
    deadline: float | None,
) -> ModelAccess:
    """The first model as the callables of ModelAccess (deepfool), under the stop checks.

    The gradient pass is set up and checked here: it must take every op the class output
    needs, fit its memory bound, and reproduce ONNX Runtime's class output on the first pool
    rows. When it cannot, logits_jacobian raises why (UNSUPPORTED_GRADIENT_OP and the like)
    and differentiable is False, so deepfool's method "auto" uses the decision method.
    """
    field = run.models[0].field
    output = class_output(model, run.embeddings_output)
    classes = int(scores.shape[-1])
    d = int(run.inputs.shape[1])

    def check() -> None:
        stop()
        if deadline is not None and time.monotonic() > deadline:
            raise DeadlineExceeded()

    refusal: ModelRejected | None = None
    chunk = 1
    try:
        gradient = model.gradient(field, output, not run.logits)
        chunk = gradient.chunk_rows(d, classes)
        probe = np.asarray(run.inputs[:AGREEMENT_ROWS], dtype=np.float64)
        logits, _ = gradient(probe, check)
        if scores.ndim == 2:  # (MC dropout runs differ from the dropout-free pass by design)
            ours = gradient.model_output(logits)
            theirs = np.asarray(scores[: probe.shape[0]], dtype=np.float64)
            gap = np.abs(ours - theirs)
            if not (gap <= AGREEMENT_TOLERANCE * (1.0 + np.abs(theirs))).all():
                raise ModelRejected(
                    field,
                    "must compute the same class output in deepfool's gradient pass as in ONNX "
                    f"Runtime; they differ by up to {float(np.nanmax(gap)):.3g} on the first "
                    "pool rows (use method 'decision')",
                    reason=reasons.UNSUPPORTED_GRADIENT_OP,
                )
    except ModelRejected as err:
        if err.reason not in (
            reasons.UNSUPPORTED_GRADIENT_OP,
            reasons.MODEL_WORKING_MEMORY_TOO_LARGE,
        ):
            raise
        refusal = err

    def logits_jacobian(rows: FloatArray) -> tuple[FloatArray, FloatArray]:
        check()
        if refusal is not None:
            raise refusal
        return gradient(rows, check)

    predict, predict_rows = predictor(model, field, output, classes, stop, deadline)
    return ModelAccess(
        inputs=run.inputs,
        logits_jacobian=logits_jacobian,
        chunk_rows=chunk,
        predict=predict,
        predict_rows=predict_rows,
        differentiable=refusal is None,
    )
