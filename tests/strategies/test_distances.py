"""The distance kernels (strategies/distances.py) against scipy.spatial.distance.cdist."""

import itertools

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cdist

from labelwise_server.strategies import distances
from labelwise_server.strategies.distances import (
    min_squared_distances,
    min_squared_distances_scaled,
    pairwise_squared_distances,
    row_blocks,
    squared_distances,
    squared_distances_from_dots,
    squared_distances_to,
    squared_norms,
    unit_rows,
)

DTYPES = [np.float32, np.float64]
# Distances from ‖u‖² + ‖v‖² − 2 u·v lose digits relative to the norms, not to the distance.
RTOL = {np.float32: 1e-4, np.float64: 1e-10}


def _data(seed: int, n: int, m: int, d: int, dtype: type) -> tuple[npt.NDArray, npt.NDArray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(dtype)
    c = rng.normal(size=(m, d)).astype(dtype)
    if n > 1:
        x[1] = x[0]  # a duplicate row: distance exactly 0 after the clamp
    return x, c


def _close(got: npt.NDArray, expected: npt.NDArray, x: npt.NDArray, c: npt.NDArray) -> None:
    scale = max(float(np.abs(x).max(initial=0.0)), float(np.abs(c).max(initial=0.0)), 1.0)
    atol = RTOL[x.dtype.type] * scale**2 * x.shape[1]
    np.testing.assert_allclose(got, expected, rtol=RTOL[x.dtype.type], atol=atol)


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 40), st.integers(1, 30), st.integers(1, 9))
def test_squared_distances_equal_cdist(dtype: type, seed: int, n: int, m: int, d: int) -> None:
    x, c = _data(seed, n, m, d, dtype)
    got = squared_distances(x, squared_norms(x), c, squared_norms(c))
    assert got.dtype == dtype and got.shape == (n, m) and (got >= 0).all()
    _close(got, cdist(x.astype(np.float64), c.astype(np.float64), "sqeuclidean"), x, c)


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 40), st.integers(0, 30), st.integers(1, 9))
def test_min_squared_distances_equal_the_min_of_cdist(
    dtype: type, seed: int, n: int, m: int, d: int
) -> None:
    x, c = _data(seed, n, m, d, dtype)
    norms = squared_norms(x)
    got = min_squared_distances(x, norms, c)
    assert got.dtype == dtype and got.shape == (n,)
    if m == 0:
        assert np.isinf(got).all()
        return
    _close(got, cdist(x.astype(np.float64), c.astype(np.float64), "sqeuclidean").min(axis=1), x, c)
    # The clamp commutes with the min: bit for bit the min over the full matrix.
    full = squared_distances(x, norms, c, squared_norms(c)).min(axis=1)
    assert got.tobytes() == full.tobytes()
    # Centres kept as −2·c (k-center's growing list) give the same distances.
    scaled = min_squared_distances_scaled(x, norms, c * dtype(-2.0), squared_norms(c))
    assert scaled.dtype == dtype
    _close(scaled, got, x, c)


@pytest.mark.parametrize("dtype", DTYPES)
def test_min_squared_distances_are_the_same_in_many_row_blocks(
    monkeypatch: pytest.MonkeyPatch, dtype: type
) -> None:
    x, c = _data(3, 101, 7, 5, dtype)
    whole = min_squared_distances(x, squared_norms(x), c)
    monkeypatch.setattr(distances, "BLOCK_FLOATS", 20)  # blocks of 2 rows
    assert len(list(row_blocks(101, 7))) == 51
    blocked = min_squared_distances(x, squared_norms(x), c)
    _close(blocked, whole, x, c)


@pytest.mark.parametrize(("n", "centres"), [(0, 5), (1, 0), (10, 3), (7, 1 << 22), (100, 1 << 19)])
def test_row_blocks_cover_the_rows_once_within_the_block_size(n: int, centres: int) -> None:
    blocks = list(row_blocks(n, centres))
    assert [s for s, _ in blocks] == list(
        range(0, n, max(1, distances.BLOCK_FLOATS // max(centres, 1)))
    )
    assert sum(e - s for s, e in blocks) == n
    assert all(e > s for s, e in blocks) and all(
        a[1] == b[0] for a, b in itertools.pairwise(blocks)
    )


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 40), st.integers(1, 9), st.data())
def test_squared_distances_to_a_row_equal_cdist(
    dtype: type, seed: int, n: int, d: int, data: st.DataObject
) -> None:
    x, _ = _data(seed, n, 0, d, dtype)
    row = data.draw(st.integers(0, n - 1))
    norms = squared_norms(x)
    got = squared_distances_to(x, norms, row)
    assert got.dtype == dtype and got[row] == 0.0 and (got >= 0).all()
    _close(
        got,
        cdist(x.astype(np.float64), x[row : row + 1].astype(np.float64), "sqeuclidean")[:, 0],
        x,
        x,
    )
    # The same as from the dot products, but at the row itself (exactly 0 there).
    from_dots = squared_distances_from_dots(x @ x[row], norms, norms[row])
    from_dots[row] = 0.0
    assert got.tobytes() == from_dots.tobytes()


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 40), st.integers(1, 9))
def test_pairwise_squared_distances_equal_cdist(seed: int, r: int, d: int) -> None:
    points, _ = _data(seed, r, 0, d, np.float64)
    got = pairwise_squared_distances(points)
    assert got.shape == (r, r) and (got >= 0).all()
    _close(got, cdist(points, points, "sqeuclidean"), points, points)


@pytest.mark.parametrize("dtype", DTYPES)
def test_unit_rows_give_cosine_distance_as_half_the_squared_euclidean(dtype: type) -> None:
    x, c = _data(5, 30, 12, 6, dtype)
    x[4] = 0.0  # an all-zero row stays zero
    u, v = unit_rows(x), unit_rows(c)
    assert u.dtype == dtype and not u[4].any()
    got = squared_distances(u, squared_norms(u), v, squared_norms(v)) / 2.0
    expected = cdist(x.astype(np.float64), c.astype(np.float64), "cosine")
    expected[4] = 0.5  # cdist has no cosine for a zero row; as a zero vector: ‖0 − v̂‖²/2
    _close(got, expected, u, v)
