"""Regression outputs: mean [n] with an optional std [n], or samples [m, n]; labeled targets [l].

Every value is at most REGRESSION_BOUND in size (labelwise_server.checks), so distances,
variances and Gaussian BALD stay finite.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from labelwise_server.checks import check_regression_values
from labelwise_server.decode.fields import Fields
from labelwise_server.errors import InvalidArgument
from labelwise_server.strategies._types import FloatArray


@dataclass
class Regression:
    mean: FloatArray | None = None
    std: FloatArray | None = None
    samples: FloatArray | None = None
    labeled_targets: FloatArray | None = None


def decode_regression(fields: Fields, sizes: dict[str, int]) -> Regression:
    """The regression inputs, checked; their pool sizes go into sizes (field -> n)."""
    out = Regression()
    mean = fields.get("regression_mean")
    std = fields.get("regression_std")
    samples = fields.get("regression_samples")
    if samples is not None:
        for other in ("regression_mean", "regression_std"):
            if other in fields:
                raise InvalidArgument(
                    other,
                    "must not be sent together with regression_samples; their mean and "
                    "standard deviation stand for it",
                )
        if samples.ndim != 2 or samples.shape[0] < 2:
            raise InvalidArgument(
                "regression_samples.shape",
                f"must be [m, n] with m >= 2 samples; got {list(samples.shape)}",
            )
        check_regression_values(samples, "regression_samples")
        out.samples = samples.astype(np.float64)
        out.mean = out.samples.mean(axis=0)
        out.std = out.samples.std(axis=0)
        sizes["regression_samples"] = samples.shape[1]
    if mean is not None:
        out.mean = _vector(mean, "regression_mean")
        sizes["regression_mean"] = mean.shape[0]
    if std is not None:
        if mean is None:
            raise InvalidArgument(
                "regression_mean", "must be sent with regression_std (the mean it spreads about)"
            )
        out.std = _vector(std, "regression_std")
        if (out.std < 0).any():
            where = int(np.flatnonzero(out.std < 0)[0])
            raise InvalidArgument(
                "regression_std",
                f"must be >= 0; got {out.std[where]} at index {where}",
            )
        sizes["regression_std"] = std.shape[0]
    targets = fields.get("labeled_targets")
    if targets is not None:
        out.labeled_targets = _vector(targets, "labeled_targets")
        if targets.shape[0] == 0:
            raise InvalidArgument(
                "labeled_targets.shape", "must be [l] with l >= 1 labeled items; got [0]"
            )
    return out


def _vector(array: npt.NDArray[Any], field: str) -> FloatArray:
    if array.ndim != 1:
        raise InvalidArgument(f"{field}.shape", f"must be [n]; got {list(array.shape)}")
    check_regression_values(array, field)
    return array.astype(np.float64)
