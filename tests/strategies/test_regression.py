"""Regression strategies: hand cases, naive loops, and scikit-activeml's greedy sampling."""

import math
from typing import Any

import numpy as np
import pytest
from skactiveml.base import SkactivemlRegressor
from skactiveml.pool import GreedySamplingTarget, GreedySamplingX

from labelwise_server.strategies import regression
from tests.strategies.task_support import run_task, scores_through_select

STD = np.array([0.0, 1.0, 2.0, 0.5])
ORACLES: list[tuple[str, dict[str, Any], dict[str, Any], list[float]]] = [
    ("regression_variance", {}, {"regression_mean": np.zeros(4), "regression_std": STD},
     [0.0, 1.0, 4.0, 0.25]),
    ("regression_variance", {"measure": "std"},
     {"regression_mean": np.zeros(4), "regression_std": STD}, [0.0, 1.0, 2.0, 0.5]),
    # Samples [3, 2]: population variances 2/3 and 0.
    ("regression_variance", {}, {"regression_samples": np.array([[0.0, 5.0], [1.0, 5.0],
                                                                [2.0, 5.0]])}, [2 / 3, 0.0]),
    ("gaussian_bald", {"noise_std": 2.0},
     {"regression_mean": np.zeros(4), "regression_std": STD},
     [0.0, 0.5 * math.log(1.25), 0.5 * math.log(2.0), 0.5 * math.log(1 + 1 / 16)]),
]  # fmt: skip
NAIVE = ["regression_variance", "gaussian_bald", "gsx", "gsy", "igs"]


@pytest.mark.parametrize(("name", "params", "fields", "expected"), ORACLES)
def test_oracle_rows(
    name: str, params: dict[str, Any], fields: dict[str, Any], expected: list[float]
) -> None:
    np.testing.assert_allclose(
        scores_through_select(name, params, **fields), expected, rtol=1e-12, atol=1e-15
    )


def test_variance_from_samples_equals_a_naive_loop() -> None:
    samples = np.random.default_rng(0).normal(size=(6, 30))
    expected = []
    for i in range(30):
        column = [float(v) for v in samples[:, i]]
        mean = sum(column) / 6
        expected.append(sum((v - mean) ** 2 for v in column) / 6)
    np.testing.assert_allclose(
        scores_through_select("regression_variance", regression_samples=samples),
        expected,
        rtol=1e-12,
    )
    bald = scores_through_select("gaussian_bald", {"noise_std": 0.5}, regression_samples=samples)
    np.testing.assert_allclose(bald, [0.5 * math.log(1 + v / 0.25) for v in expected], rtol=1e-12)


def test_gsx_hand_case_and_centroid_start() -> None:
    x = np.array([[0.0], [1.0], [3.0], [10.0]])
    # Labeled at 0: farthest is 10 (distance 10), then 3 (min(3, 7) = 3), then 1 (1).
    result = run_task("gsx", embeddings=x, labeled_embeddings=np.array([[0.0]]), k=3)
    assert result.indices.tolist() == [3, 2, 1]
    np.testing.assert_allclose(result.scores, [10.0, 3.0, 1.0])
    # No labeled items: centroid 3.5 is closest to item 2 (3.0); then 10 (7), then 0 (3).
    result = run_task("gsx", embeddings=x, k=3)
    assert result.indices.tolist() == [2, 3, 0]
    np.testing.assert_allclose(result.scores, [7.0, 7.0, 3.0])


def test_gsy_and_igs_hand_cases() -> None:
    f = np.array([0.0, 2.0, 5.0, 9.0])
    # Labeled target 1: distances 1, 1, 4, 8 -> 9 (8); then min(|f−9|, ·) -> 5 (4); then 0 or 2
    # (1 each): the lower index.
    result = run_task("gsy", regression_mean=f, labeled_targets=np.array([1.0]), k=3)
    assert result.indices.tolist() == [3, 2, 0]
    np.testing.assert_allclose(result.scores, [8.0, 4.0, 1.0])
    x = np.array([[0.0], [4.0], [1.0], [1.0]])
    # Labeled (x=0, y=1): products |x|·|f−1| = 0, 4, 4, 8 -> 3; then min(·, |x−1|·|f−9|) for
    # 1: min(4, 3·7 = 21) = 4, 2: min(4, 0) = 0 -> 1.
    result = run_task("igs", embeddings=x, regression_mean=f, labeled_embeddings=np.array([[0.0]]),
                      labeled_targets=np.array([1.0]), k=2)  # fmt: skip
    assert result.indices.tolist() == [3, 1]
    np.testing.assert_allclose(result.scores, [8.0, 4.0])


def naive_greedy(x: np.ndarray | None, f: np.ndarray | None, lx: Any, ly: Any, k: int) -> list:
    """Farthest-first over min_m of the distance product, with plain loops."""
    centres = [(None if lx is None else lx[m], None if ly is None else ly[m])
               for m in range(len(lx if lx is not None else ly))]  # fmt: skip
    n = len(x if x is not None else f)
    picked: list[int] = []
    for _ in range(k):
        best, best_score = -1, -1.0
        for i in range(n):
            if i in picked:
                continue
            score = math.inf
            for cx, cy in centres:
                d = 1.0
                if x is not None:
                    d *= math.dist(x[i], cx)
                if f is not None:
                    d *= abs(f[i] - cy)
                score = min(score, d)
            if score > best_score:
                best, best_score = i, score
        picked.append(best)
        centres.append((None if x is None else x[best], None if f is None else f[best]))
    return picked


@pytest.mark.parametrize("seed", range(4))
def test_greedy_sampling_equals_a_naive_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x, f = rng.normal(size=(40, 3)), rng.normal(size=40)
    lx, ly = rng.normal(size=(4, 3)), rng.normal(size=4)
    gsx = run_task("gsx", embeddings=x, labeled_embeddings=lx, k=10)
    assert gsx.indices.tolist() == naive_greedy(x, None, lx, None, 10)
    gsy = run_task("gsy", regression_mean=f, labeled_targets=ly, k=10)
    assert gsy.indices.tolist() == naive_greedy(None, f, None, ly, 10)
    igs = run_task("igs", embeddings=x, regression_mean=f, labeled_embeddings=lx,
                   labeled_targets=ly, k=10)  # fmt: skip
    assert igs.indices.tolist() == naive_greedy(x, f, lx, ly, 10)


class _Lookup(SkactivemlRegressor):  # type: ignore[misc]
    """A 'regressor' that predicts given values for given rows (no fitting)."""

    def __init__(self, rows: Any = None, values: Any = None) -> None:
        super().__init__()
        self.rows = rows
        self.values = values

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> "_Lookup":  # noqa: N803
        return self

    def predict(self, X: Any) -> Any:  # noqa: N803
        table = {row.tobytes(): v for row, v in zip(self.rows, self.values, strict=True)}
        return np.array([table[row.tobytes()] for row in np.asarray(X, dtype=np.float64)])


@pytest.mark.parametrize("seed", range(3))
def test_greedy_sampling_equals_scikit_activeml(seed: int) -> None:
    rng = np.random.default_rng(seed + 10)
    n, labeled, k = 50, 5, 8
    x_all = rng.normal(size=(n + labeled, 3))
    y_all = np.full(n + labeled, np.nan)
    y_all[n:] = rng.normal(size=labeled)
    f = rng.normal(size=n)
    candidates = np.arange(n)
    expected_x = GreedySamplingX(random_state=0).query(x_all, y_all, candidates=candidates,
                                                       batch_size=k)  # fmt: skip
    ours = run_task("gsx", embeddings=x_all[:n], labeled_embeddings=x_all[n:], k=k)
    assert ours.indices.tolist() == expected_x.tolist()
    reg = _Lookup(x_all, np.concatenate([f, y_all[n:]]))
    for method, name in (("GSy", "gsy"), ("GSi", "igs")):
        strategy = GreedySamplingTarget(method=method, n_GSx_samples=0, random_state=0)
        expected = strategy.query(x_all, y_all, reg, fit_reg=False, candidates=candidates,
                                  batch_size=k)  # fmt: skip
        ours = run_task(name, embeddings=x_all[:n], regression_mean=f,
                        labeled_embeddings=x_all[n:], labeled_targets=y_all[n:], k=k)  # fmt: skip
        assert ours.indices.tolist() == expected.tolist(), method


def test_gaussian_bald_stays_finite_for_extreme_ratios_and_matches_log1p() -> None:
    std = np.array([0.0, 1e-300, 1e-8, 0.3, 1.0, 1e15])
    scores = regression.gaussian_bald_scores(std, noise_std=1e-300)
    assert np.isfinite(scores).all() and scores[0] == 0.0 and not np.signbit(scores[0])
    np.testing.assert_allclose(scores[-1], np.log(1e15) - np.log(1e-300), rtol=1e-12)
    moderate = regression.gaussian_bald_scores(std[2:5], noise_std=0.7)
    np.testing.assert_allclose(moderate, 0.5 * np.log1p((std[2:5] / 0.7) ** 2), rtol=1e-12)
