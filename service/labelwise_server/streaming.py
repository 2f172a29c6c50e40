"""Stream decisions, transport-free: a DecideRequest in, a DecideResponse out.

decode (config, items, token) → validate → decide (strategies/stream.py) → encode with the next
token. No caller model runs here and the work per call is bounded (at most MAX_ITEMS items,
stop-checked every STOP_EVERY items), so it runs on the server's compute threads, not in a work
process. Field paths of errors are prefixed with `prefix` ("request." inside DecideStream).
"""

from dataclasses import dataclass, replace

import numpy as np

from labelwise.tensors import DECIDE_ITEM_AXIS
from labelwise.v1 import stream_selection_pb2 as spb
from labelwise_server.checks import check_finite
from labelwise_server.decode.fields import Fields
from labelwise_server.decode.probabilities import class_scores
from labelwise_server.decode.spec import decode_spec
from labelwise_server.errors import InvalidArgument
from labelwise_server.strategies._types import FloatArray, Params, StopCheck, never_stop
from labelwise_server.strategies.registry import STREAM_STRATEGIES
from labelwise_server.strategies.stream import (
    UTILITY_FUNCTIONS,
    StreamState,
    StreamStrategy,
    WindowCap,
    pal_utilities,
    pal_vector_count,
)
from labelwise_server.stream_token import TokenKey, config_digest, decode_token, encode_token
from labelwise_server.tensors import RawTensor

MAX_ITEMS = 65536
# Elements of the one item tensor: with float64 copies and per-item work they stay at tens of
# MB in the server process, where this work runs (not a work process).
MAX_ITEM_ELEMENTS = 1 << 22
STOP_EVERY = 4096
DEFAULT_BUDGET = 0.1
_ITEM_FIELDS = tuple(DECIDE_ITEM_AXIS)  # the proto's pool_axis option on DecideRequest
# PAL's work per item: label vectors × classes (pal_vector_count(c, m_max) · c) at most this.
MAX_PAL_WORK = 1 << 14
FREQUENCY_BOUND = 1e12


@dataclass(frozen=True)
class StreamConfig:
    """A stream's configuration, which must not change while the stream lasts."""

    strategy: StreamStrategy
    params: Params
    budget: float
    cap: WindowCap
    digest: bytes

    @property
    def max_history(self) -> int:
        """Utilities the state may keep: the quantile filter's window w, else none."""
        return int(self.params["w"]) if "w_tol" in self.params else 0


def stream_config(request: spb.DecideRequest, prefix: str = "") -> StreamConfig:
    spec = request.strategy
    field = f"{prefix}strategy"
    strategy, params = decode_spec(spec, STREAM_STRATEGIES, field)
    budget = request.budget if request.HasField("budget") else DEFAULT_BUDGET
    if not (0.0 < budget <= 1.0):  # NaN fails too
        raise InvalidArgument(f"{prefix}budget", f"must be in (0, 1]; got {budget!r}")
    cap = WindowCap()
    if request.HasField("window_cap"):
        items, most = request.window_cap.window_items, request.window_cap.max_labels
        if items < 1:
            raise InvalidArgument(f"{prefix}window_cap.window_items", f"must be >= 1; got {items}")
        if not 0 <= most <= items:
            raise InvalidArgument(
                f"{prefix}window_cap.max_labels", f"must be in [0, window_items]; got {most}"
            )
        cap = WindowCap(items, most)
    canonical = "|".join(
        [
            "v1",
            strategy.name,
            ";".join(f"{name}={params[name]!r}" for name in sorted(params)),
            repr(budget if strategy.budgeted else None),
            f"{cap.items},{cap.max_labels}",
        ]
    )
    return StreamConfig(strategy, params, budget, cap, config_digest(canonical))


def _tensors(request: spb.DecideRequest) -> dict[str, RawTensor]:
    return {
        name: RawTensor(tensor.dtype, list(tensor.shape), memoryview(tensor.raw_data))
        for name in _ITEM_FIELDS
        if request.HasField(name)
        for tensor in [getattr(request, name)]
    }


def item_utilities(
    request: spb.DecideRequest,
    config: StreamConfig,
    max_elements: int,
    prefix: str = "",
    stop: StopCheck = never_stop,
) -> tuple[FloatArray, Params]:
    """The items' utilities [n] under the strategy's measure, and the params with what the
    items fix (fixed_uncertainty's classes)."""
    tensors = _tensors(request)
    sent = [name for name in _ITEM_FIELDS if name in tensors]
    if len(sent) != 1:
        got = ", ".join(sent) if sent else "none"
        raise InvalidArgument(
            f"{prefix}probabilities",
            f"the items must come as exactly one of {', '.join(_ITEM_FIELDS)}; got {got}",
        )
    name = sent[0]
    if (name == "frequencies") != config.strategy.needs_frequencies:
        raise InvalidArgument(
            f"{prefix}frequencies",
            "is what pal needs, and only pal reads it; send frequencies with pal and "
            f"probabilities (or logits, committee, utilities) otherwise; got {name} for "
            f"{config.strategy.name}",
        )
    shape = tensors[name].shape
    axis = DECIDE_ITEM_AXIS[name]
    if len(shape) > axis and shape[axis] > MAX_ITEMS:
        raise InvalidArgument(
            f"{prefix}{name}.shape",
            f"must have at most {MAX_ITEMS} items per call (axis {axis}); got {shape[:4]}",
        )
    fields = Fields(
        {f"{prefix}{key}": value for key, value in tensors.items()},
        min(max_elements, MAX_ITEM_ELEMENTS),
    )
    params = dict(config.params)
    temperature = request.temperature if request.HasField("temperature") else 1.0
    if not (temperature > 0 and np.isfinite(temperature)):
        raise InvalidArgument(f"{prefix}temperature", f"must be > 0; got {temperature!r}")
    if name == "frequencies":
        return _pal_utilities(fields, params, prefix, stop), params
    if name == "utilities":
        utilities = fields.require(f"{prefix}utilities")
        if utilities.ndim != 1 or utilities.shape[0] < 1:
            raise InvalidArgument(
                f"{prefix}utilities.shape", f"must be [n] with n >= 1; got {list(utilities.shape)}"
            )
        check_finite(utilities, f"{prefix}utilities")
        if utilities.min() < 0 or utilities.max() > 1:
            raise InvalidArgument(f"{prefix}utilities", "must be in [0, 1]")
        if "classes" in params and int(params["classes"]) < 2:
            raise InvalidArgument(
                f"{prefix}strategy.params[classes]",
                f"must be >= 2 when the request carries utilities; got {params['classes']}",
            )
        return np.asarray(utilities, dtype=np.float64), params
    if name in ("committee", "committee_logits"):
        committee = class_scores(
            fields, f"{prefix}committee", f"{prefix}committee_logits", ndim=3,
            temperature=temperature,
        )  # fmt: skip
        probabilities = np.asarray(committee, dtype=np.float64).mean(axis=0)
    else:
        scores = class_scores(
            fields, f"{prefix}probabilities", f"{prefix}logits", ndim=2, temperature=temperature
        )
        probabilities = np.asarray(scores, dtype=np.float64)
    if probabilities.shape[0] < 1:
        raise InvalidArgument(f"{prefix}{name}.shape", "must hold n >= 1 items; got 0")
    if "classes" in params:
        classes = int(params["classes"])
        if classes == 1:
            raise InvalidArgument(f"{prefix}strategy.params[classes]", "must be 0 or >= 2; got 1")
        params["classes"] = classes or probabilities.shape[1]
    if not config.strategy.reads_items:
        return np.zeros(probabilities.shape[0]), params
    measure = config.strategy.utility_name(params)
    return UTILITY_FUNCTIONS[measure](probabilities), params


def _pal_utilities(fields: Fields, params: Params, prefix: str, stop: StopCheck) -> FloatArray:
    field = f"{prefix}frequencies"
    frequencies = fields.require(field)
    if frequencies.ndim != 2 or frequencies.shape[0] < 1 or frequencies.shape[1] < 2:
        raise InvalidArgument(
            f"{field}.shape", f"must be [n, c] with n >= 1, c >= 2; got {list(frequencies.shape)}"
        )
    classes, m_max = frequencies.shape[1], int(params["m_max"])
    work = pal_vector_count(classes, m_max) * classes
    if work > MAX_PAL_WORK:
        raise InvalidArgument(
            f"{field}.shape",
            f"pal with m_max {m_max} weighs {work} label vectors × classes per item for c = "
            f"{classes}, over the server's {MAX_PAL_WORK}; lower m_max or the classes",
        )
    check_finite(frequencies, field)
    if frequencies.min() < 0 or frequencies.max() > FREQUENCY_BOUND:
        raise InvalidArgument(field, f"must be in [0, {FREQUENCY_BOUND:g}]")
    return pal_utilities(frequencies, float(params["prior"]), m_max, stop)


def initial_state(config: StreamConfig, seed: int) -> StreamState:
    theta = float(config.params["theta"]) if config.strategy.initial_theta else 0.0
    return StreamState(seed=seed, theta=theta)


def decide(
    request: spb.DecideRequest,
    key: TokenKey,
    max_elements: int,
    *,
    previous: tuple[StreamConfig, StreamState] | None = None,
    prefix: str = "",
    stop: StopCheck = never_stop,
) -> tuple[spb.DecideResponse, StreamConfig, StreamState]:
    """The answer to one batch and the stream's configuration and state after it.

    previous: DecideStream's state after its last answer, used when the request's token is
    empty (the configuration must then be the same).
    """
    config = stream_config(request, prefix)
    if request.token:
        state = decode_token(request.token, config.digest, key, config.max_history)
    elif previous is not None:
        if previous[0].digest != config.digest:
            raise InvalidArgument(
                f"{prefix}strategy",
                "must keep the stream's configuration (strategy, params, budget, window_cap) "
                "of its earlier messages; send a token to start another",
            )
        state = replace(previous[1], history=list(previous[1].history))
    else:
        state = initial_state(config, request.seed)
    utilities, params = item_utilities(request, config, max_elements, prefix, stop)
    labels, utility_parts, probabilities = [], [], []
    for start in range(0, utilities.shape[0], STOP_EVERY):
        stop()
        part = config.strategy.decide(
            utilities[start : start + STOP_EVERY], state, config.budget, config.cap, params
        )
        labels.append(part.label)
        utility_parts.append(part.utility)
        probabilities.append(part.probability)
    response = spb.DecideResponse(
        label=np.concatenate(labels).tolist(),
        utilities=np.concatenate(utility_parts).tolist(),
        label_probabilities=np.concatenate(probabilities).tolist(),
        token=encode_token(state, config.digest, key),
        items_seen=state.seen,
        items_labeled=state.labeled,
    )
    return response, config, state
