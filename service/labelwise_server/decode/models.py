"""Model mode's inputs: the models' input rows [n, d] and the settings of their run.

Only checked here; labelwise_server.inference resolves and runs the models.
"""

import numpy as np

from labelwise.v1 import query_selection_pb2 as pb
from labelwise_server import reasons
from labelwise_server.checks import check_finite, check_matrix
from labelwise_server.decode.fields import Fields
from labelwise_server.errors import InvalidArgument
from labelwise_server.request import MAX_MC_SAMPLES, ModelRun, ModelSource

# Fields the models compute, so a model-mode request must not send them.
_CALLER_OUTPUTS = ("probabilities", "logits", "committee", "committee_logits")


def decode_models(
    fields: Fields,
    header: pb.SelectQueriesRequest,
    temperature: float,
    needs_model: bool,
    model_mode: bool,
) -> ModelRun:
    """The run the request's models are asked for; model_mode: the server accepts models."""
    for name in _CALLER_OUTPUTS:
        if name in fields:
            raise InvalidArgument(
                "models", f"must not be sent together with {name}: the models compute it"
            )
    if not model_mode:
        raise InvalidArgument(
            "models", "are not accepted by this server", reason=reasons.NO_MODEL_MODE
        )
    input_field = "model_inputs" if "model_inputs" in fields else "embeddings"
    x = fields.get(input_field)
    if x is None:
        raise InvalidArgument(
            "model_inputs",
            "model mode needs the models' input rows: send model_inputs or embeddings",
            reason=reasons.MISSING_INPUT,
        )
    if input_field == "model_inputs":
        check_matrix(x, "model_inputs", "[n, d]")
        check_finite(x, "model_inputs")
    if x.shape[0] == 0:
        raise InvalidArgument(f"{input_field}.shape", "must describe a non-empty pool; got n = 0")
    samples = header.mc_dropout_samples
    if samples and not (2 <= samples <= MAX_MC_SAMPLES):
        raise InvalidArgument(
            "mc_dropout_samples", f"must be 0 or in [2, {MAX_MC_SAMPLES}]; got {samples}"
        )
    if samples and len(header.models) != 1:
        raise InvalidArgument(
            "mc_dropout_samples",
            f"must come with exactly one model; got {len(header.models)} (an ensemble is "
            "already a committee)",
        )
    if header.inference_batch_rows < 0:
        raise InvalidArgument(
            "inference_batch_rows", f"must be >= 0; got {header.inference_batch_rows}"
        )
    timeout = None
    if header.HasField("inference_timeout_seconds"):
        timeout = header.inference_timeout_seconds
        if not (np.isfinite(timeout) and timeout > 0):
            raise InvalidArgument(
                "inference_timeout_seconds", f"must be finite and > 0; got {timeout}"
            )
    if header.model_output not in (
        pb.MODEL_OUTPUT_UNSPECIFIED,
        pb.MODEL_OUTPUT_PROBABILITIES,
        pb.MODEL_OUTPUT_LOGITS,
    ):
        raise InvalidArgument("model_output", f"must be a ModelOutput; got {header.model_output}")
    sources = []
    for i, spec in enumerate(header.models):
        source = spec.WhichOneof("source")
        sources.append(
            ModelSource(
                spec.onnx if source == "onnx" else None,
                spec.sha256 if source == "sha256" else None,
                f"models[{i}]",
            )
        )
    return ModelRun(
        models=tuple(sources),
        inputs=x,
        input_field=input_field,
        embeddings_output=header.embeddings_output,
        mc_samples=samples,
        seed=header.seed,
        batch_rows=header.inference_batch_rows,
        timeout=timeout,
        logits=header.model_output == pb.MODEL_OUTPUT_LOGITS,
        temperature=temperature,
        needs_model=needs_model,
    )
