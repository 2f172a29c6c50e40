"""Array checks and transforms: softmax is a distribution for any finite logits, never mutates."""

from typing import Any

import numpy as np
import numpy.typing as npt
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from labelwise_server.checks import softmax


def reference_softmax(logits: npt.NDArray[Any], temperature: float) -> npt.NDArray[np.float64]:
    scaled = logits.astype(np.float64) / temperature
    e = np.exp(scaled - scaled.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)  # type: ignore[no-any-return]


@settings(max_examples=200, deadline=None)
@given(
    hnp.arrays(
        st.sampled_from([np.float32, np.float64]),
        hnp.array_shapes(min_dims=2, max_dims=3, min_side=2, max_side=5),
        elements=st.floats(allow_nan=False, allow_infinity=False, width=32),
    ),
    st.one_of(st.floats(1e-300, 1e300), st.sampled_from([1e-46, 5e-324, 1e-38, 1.0])),
)
def test_softmax_is_a_distribution_for_any_finite_logits_and_temperature(
    logits: npt.NDArray[Any], temperature: float
) -> None:
    probabilities = softmax(logits, temperature)
    assert probabilities.dtype == logits.dtype
    assert np.isfinite(probabilities).all() and (probabilities >= 0).all()
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-5)
    # The largest logit of each row keeps the largest probability.
    top = np.take_along_axis(probabilities, logits.argmax(axis=-1)[..., None], axis=-1)
    assert (top[..., 0] >= probabilities.max(axis=-1) - 1e-6).all()
    if logits.dtype == np.float64 and 1e-100 < temperature < 1e100:
        np.testing.assert_allclose(probabilities, reference_softmax(logits, temperature),
                                   rtol=1e-6, atol=1e-12)  # fmt: skip


def test_softmax_never_mutates_the_logits() -> None:
    logits = np.arange(6.0).reshape(2, 3)
    logits.flags.writeable = False  # decoded tensors are read-only views
    softmax(logits, 0.5)
