"""Distances between rows of embeddings: every distance kernel of the batch strategies.

Squared euclidean distances come from dot products, ‖u − v‖² = ‖u‖² + ‖v‖² − 2 u·v
(one BLAS product instead of an [n, l, d] difference), clamped at 0 where rounding
makes them negative. Every kernel works in the dtype it is given (float32 stays
float32) and keeps the order of operations its strategies have always used, so
their answers are the same to the bit (typicality's within-set matrix alone sums
the two norms first). Cosine distance is euclidean on unit rows:
‖û − v̂‖² = 2 − 2 cos(u, v).
"""

from collections.abc import Iterator
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

Floats = TypeVar("Floats", npt.NDArray[np.float32], npt.NDArray[np.float64])

# Floats of one [rows, l] block of distances to l centres: a few MiB however large l is.
BLOCK_FLOATS = 1 << 21


def squared_norms(x: Floats) -> Floats:
    """‖x_i‖² of each row of x [n, d]: [n], in x's dtype."""
    norms: Floats = np.einsum("ij,ij->i", x, x)
    return norms


def unit_rows(x: Floats) -> Floats:
    """Rows of x [n, d] scaled to unit euclidean norm; all-zero rows stay zero."""
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))
    norms[norms == 0] = 1.0
    scaled: Floats = x / norms[:, None]
    return scaled


def row_blocks(n: int, centres: int) -> Iterator[tuple[int, int]]:
    """(start, end) of the row blocks whose [rows, centres] distances fit in BLOCK_FLOATS."""
    step = max(1, BLOCK_FLOATS // max(centres, 1))
    for start in range(0, n, step):
        yield start, min(start + step, n)


def _unclamped(x: Floats, x_norms: Floats, centres: Floats, centre_norms: Floats) -> Floats:
    """‖c_j‖² − 2 x_i·c_j + ‖x_i‖² [b, l], before the clamp at 0."""
    d2: Floats = x @ centres.T  # [b, l]
    d2 *= -2.0
    d2 += centre_norms
    d2 += x_norms[:, None]
    return d2


def squared_distances(x: Floats, x_norms: Floats, centres: Floats, centre_norms: Floats) -> Floats:
    """‖x_i − c_j‖² [b, l] for rows x [b, d] and centres [l, d], given their squared norms."""
    d2 = _unclamped(x, x_norms, centres, centre_norms)
    np.maximum(d2, 0.0, out=d2)
    return d2


def min_squared_distances(x: Floats, x_norms: Floats, centres: Floats) -> Floats:
    """min_j ‖x_i − c_j‖² over the rows of centres [l, d], for each row of x [n, d]: [n].

    Blocked over rows (row_blocks), so memory stays O(block · l); +inf when l = 0.
    """
    out = np.full(x.shape[0], np.inf, dtype=x.dtype)
    if centres.shape[0] == 0:
        return out
    centre_norms = squared_norms(centres)
    for start, end in row_blocks(x.shape[0], centres.shape[0]):
        out[start:end] = _unclamped(x[start:end], x_norms[start:end], centres, centre_norms).min(
            axis=1
        )
    np.maximum(out, 0.0, out=out)  # the clamp commutes with the min
    return out


def min_squared_distances_scaled(
    x: Floats, x_norms: Floats, scaled: Floats, centre_norms: Floats
) -> Floats:
    """min_j ‖x_i − c_j‖² [b] given −2·c_j [p, d] and ‖c_j‖² [p] of the centres.

    For centres that are kept scaled (k-center's growing list): one product and
    one add over [b, p], the ‖x_i‖² added after the min.
    """
    d2: Floats = x @ scaled.T  # [b, p]
    d2 += centre_norms
    nearest: Floats = d2.min(axis=1)
    nearest += x_norms
    np.maximum(nearest, 0.0, out=nearest)
    return nearest


def squared_distances_from_dots(
    dots: Floats, norms: Floats, centre_norm: float | np.floating[Any]
) -> Floats:
    """‖u_i − v‖² [b] in place of the dot products dots [b] = u_i·v, given ‖u_i‖² [b] and ‖v‖².

    The incremental step of a greedy walk: the distance of every row to the one
    just picked, from a single [b, d]·[d] pass (or any inner product, such as
    BADGE's (a_i·a_j)(x_i·x_j) between gradient embeddings).
    """
    dots *= -2.0
    dots += norms
    dots += centre_norm
    np.maximum(dots, 0.0, out=dots)
    return dots


def squared_distances_to(x: Floats, x_norms: Floats, row: int) -> Floats:
    """‖x_i − x_row‖² [n] for every row i of x [n, d], 0 exactly at row itself."""
    dots: Floats = x @ x[row]  # [n]
    d2 = squared_distances_from_dots(dots, x_norms, x_norms[row])
    d2[row] = 0.0  # exact, whatever the rounding
    return d2


def pairwise_squared_distances(points: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """‖p_i − p_j‖² [r, r] between the rows of points [r, d], as (‖p_i‖² + ‖p_j‖²) − 2 p_i·p_j.

    Within one set (typicality's neighbourhoods); its order of operations is its
    own, so its answers stay those it has always given.
    """
    norms = np.einsum("ij,ij->i", points, points)
    d2: npt.NDArray[np.float64] = norms[:, None] + norms[None, :] - 2.0 * (points @ points.T)
    np.maximum(d2, 0.0, out=d2)
    return d2
