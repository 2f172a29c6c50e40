"""The request's raw tensors, decoded on demand under the element limit."""

from collections.abc import Mapping
from typing import Any

import numpy.typing as npt

from labelwise_server.errors import InvalidArgument
from labelwise_server.tensors import RawTensor, decode_tensor


class Fields:
    def __init__(self, tensors: Mapping[str, RawTensor], max_elements: int) -> None:
        self._tensors = tensors
        self._max_elements = max_elements

    def __contains__(self, name: str) -> bool:
        return name in self._tensors

    def get(self, name: str, allow_int: bool = False) -> npt.NDArray[Any] | None:
        raw = self._tensors.get(name)
        if raw is None:
            return None
        return decode_tensor(raw, name, self._max_elements, allow_int=allow_int)

    def require(self, name: str) -> npt.NDArray[Any]:
        """A field the request sent, decoded."""
        return decode_tensor(self._tensors[name], name, self._max_elements)

    def dtype(self, name: str) -> int:
        return self._tensors[name].dtype

    def present(self, probs_name: str, logits_name: str) -> str:
        """The name of the pair the request sent (logits_name when it sent neither)."""
        return probs_name if probs_name in self._tensors else logits_name

    def one_of(self, probs_name: str, logits_name: str) -> str | None:
        """The one of a probabilities/logits pair the request sent (None: neither); not both."""
        if probs_name in self._tensors and logits_name in self._tensors:
            raise InvalidArgument(
                logits_name, f"must not be sent together with {probs_name}; send one of them"
            )
        name = self.present(probs_name, logits_name)
        return name if name in self._tensors else None
