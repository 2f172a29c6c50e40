"""Stream selection: should each arriving item be labeled, at a target rate, from any replica.

from labelwise import Client
with Client("localhost:50051") as client:
    stream = client.stream_selector("variable_uncertainty", budget=0.05)
    for batch in batches:                       # each [n, c] class probabilities
        decisions = stream.decide(probabilities=batch)
        send_for_labeling(batch[decisions.label])
    save(stream.token)                          # resume later, on any replica

The selector carries the stream's token from each answer to the next call; the service keeps
nothing between calls.
"""

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np
import numpy.typing as npt

from labelwise.client import ParamValue, _to_param
from labelwise.tensors import DECIDE_ITEM_AXIS, encode_tensor
from labelwise.v1 import query_selection_pb2 as pb
from labelwise.v1 import stream_selection_pb2 as spb
from labelwise.v1 import stream_selection_pb2_grpc as spb_grpc

_ITEM_FIELDS = tuple(DECIDE_ITEM_AXIS)


@dataclass(frozen=True)
class StreamDecisions:
    """One batch's answer: item i's decision, utility and labeling probability at index i."""

    label: npt.NDArray[np.bool_]
    utilities: npt.NDArray[np.float64]
    label_probabilities: npt.NDArray[np.float64]
    token: bytes
    items_seen: int
    items_labeled: int

    @classmethod
    def from_response(cls, response: spb.DecideResponse) -> "StreamDecisions":
        return cls(
            label=np.asarray(response.label, dtype=bool),
            utilities=np.asarray(response.utilities, dtype=np.float64),
            label_probabilities=np.asarray(response.label_probabilities, dtype=np.float64),
            token=response.token,
            items_seen=response.items_seen,
            items_labeled=response.items_labeled,
        )


def decide_request(
    strategy: str,
    params: Mapping[str, ParamValue] | None = None,
    *,
    budget: float | None = None,
    window_items: int | None = None,
    max_labels: int | None = None,
    seed: int = 0,
    token: bytes = b"",
    temperature: float | None = None,
    items: Mapping[str, npt.ArrayLike | None],
) -> spb.DecideRequest:
    """A DecideRequest; items: exactly one of probabilities, logits, committee,
    committee_logits or utilities (as NumPy-like arrays)."""
    request = spb.DecideRequest(
        strategy=pb.StrategySpec(
            name=strategy, params={k: _to_param(v) for k, v in (params or {}).items()}
        ),
        token=token,
        seed=seed,
    )
    if budget is not None:
        request.budget = budget
    if window_items is not None or max_labels is not None:
        request.window_cap.window_items = window_items or 0
        request.window_cap.max_labels = max_labels or 0
    if temperature is not None:
        request.temperature = temperature
    for name, value in items.items():
        if name not in _ITEM_FIELDS:
            raise TypeError(f"unknown item field {name!r}; use one of {_ITEM_FIELDS}")
        if value is not None:
            getattr(request, name).CopyFrom(encode_tensor(np.asarray(value)))
    return request


class StreamSelector:
    """One stream's decisions over a client's channel, carrying its token between calls.

    The configuration (strategy, params, budget, window cap) is fixed for the stream, as the
    service requires; token resumes a stream saved earlier (StreamSelector.token).
    """

    def __init__(
        self,
        channel: grpc.Channel,
        strategy: str,
        params: Mapping[str, ParamValue] | None = None,
        *,
        budget: float | None = None,
        window_items: int | None = None,
        max_labels: int | None = None,
        seed: int = 0,
        token: bytes = b"",
        errors: Any = None,
    ) -> None:
        self._stub = spb_grpc.StreamSelectionServiceStub(channel)  # type: ignore[no-untyped-call]
        self._config: dict[str, Any] = {
            "strategy": strategy,
            "params": dict(params or {}),
            "budget": budget,
            "window_items": window_items,
            "max_labels": max_labels,
            "seed": seed,
        }
        self.token = token
        self._errors = errors

    def request(self, **items: npt.ArrayLike | None) -> spb.DecideRequest:
        """The DecideRequest for items with the current token."""
        arrays = dict(items)
        temperature = arrays.pop("temperature", None)
        c = self._config
        return decide_request(
            c["strategy"],
            c["params"],
            budget=c["budget"],
            window_items=c["window_items"],
            max_labels=c["max_labels"],
            seed=c["seed"],
            token=self.token,
            temperature=None if temperature is None else float(temperature),  # type: ignore[arg-type]
            items=arrays,
        )

    def decide(
        self, *, deadline: float | None = None, **items: npt.ArrayLike | None
    ) -> StreamDecisions:
        """Decide for one batch (probabilities=..., logits=..., committee=...,
        committee_logits=..., utilities=... or, for pal, frequencies=...; temperature=...);
        the token moves on."""
        try:
            response = self._stub.Decide(self.request(**items), timeout=deadline)
        except grpc.RpcError as err:
            raise self._error(err) from None
        self.token = response.token
        return StreamDecisions.from_response(response)

    def decide_stream(
        self, batches: Iterable[Mapping[str, npt.ArrayLike]], *, deadline: float | None = None
    ) -> Iterator[StreamDecisions]:
        """Decide for many batches over one DecideStream call, answers in order; the token
        moves on with each answer. Each batch is a mapping such as {"probabilities": p}."""
        first = True

        def messages() -> Iterator[spb.DecideStreamRequest]:
            nonlocal first
            for batch in batches:
                request = self.request(**dict(batch))
                if not first:
                    request.token = b""  # the call carries the state on
                first = False
                yield spb.DecideStreamRequest(request=request)

        try:
            for answer in self._stub.DecideStream(messages(), timeout=deadline):
                self.token = answer.response.token
                yield StreamDecisions.from_response(answer.response)
        except grpc.RpcError as err:
            raise self._error(err) from None

    def _error(self, err: grpc.RpcError) -> Exception:
        if self._errors is None:
            return err
        converted: Exception = self._errors(err)
        return converted
