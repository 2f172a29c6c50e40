"""Multi-label, regression, structured and stopping: labelwise in process vs a NumPy floor
and, where one exists, a peer library, side by side in one run.

  - structured_entropy / structured_bald (mean reduction, with a padding mask) on
    segmentation-sized pools, vs the same formulas in plain NumPy over the class axis;
  - multilabel_entropy over 1M × 20 labels, vs plain NumPy;
  - gsx / igs (k = 50) vs a plain NumPy farthest-first loop and scikit-activeml's
    GreedySamplingX / GreedySamplingTarget (which keep an [n, n] distance matrix, so
    they run on a smaller pool);
  - CheckStopping's kappas over 10 rounds × 100k stop-set items vs scikit-learn's
    cohen_kappa_score.
labelwise timings go through the server's own path (parse the wire bytes, validate,
select), without the network. Usage: python bench/tasks.py [--repeats 5]
"""

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "service"), str(ROOT / "clients/python/src")]

from labelwise.client import _encode, _Request  # noqa: E402
from labelwise.v1 import query_selection_pb2 as pb  # noqa: E402
from labelwise_server.selection import select  # noqa: E402
from labelwise_server.stopping import cohen_kappa  # noqa: E402
from labelwise_server.tensors import parse_request  # noqa: E402
from labelwise_server.validation import decode_request  # noqa: E402

K = 50


def median_ms(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e3


def through_labelwise(name: str, k: int = K, **tensors: Any) -> Callable[[], Any]:
    header = pb.SelectQueriesRequest(k=k, strategies=[pb.StrategySpec(name=name)])
    payload = _encode(_Request(header, {key: np.asarray(v) for key, v in tensors.items()}))
    return lambda: select(decode_request(parse_request(payload), 1 << 31))


def top_k(scores: np.ndarray, k: int = K) -> np.ndarray:
    top = np.argpartition(scores, scores.shape[0] - k)[scores.shape[0] - k :]
    return top[np.argsort(-scores[top], kind="stable")]


def numpy_entropy(p: np.ndarray, axis: int) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.nansum(p * np.log(p), axis=axis)


def greedy_rows(rng: np.random.Generator, n: int, repeats: int) -> list[Any]:
    x = rng.normal(size=(n, 32))
    f = rng.normal(size=n)
    lx, ly = rng.normal(size=(20, 32)), rng.normal(size=20)

    def numpy_gsx() -> None:
        d = np.sqrt(((x[:, None, :] - lx[None]) ** 2).sum(-1)).min(axis=1)
        for _ in range(K):
            j = int(np.argmax(d))
            np.minimum(d, np.sqrt(((x - x[j]) ** 2).sum(1)), out=d)
            d[j] = -1

    peer = "—"
    if n <= 5_000:  # scikit-activeml keeps an [n, n + l] distance matrix
        from skactiveml.pool import GreedySamplingX

        x_all = np.concatenate([x, lx])
        y_all = np.concatenate([np.full(n, np.nan), ly])
        strategy = GreedySamplingX()

        def skactiveml_gsx() -> None:
            strategy.query(x_all, y_all, candidates=np.arange(n), batch_size=K)

        peer = f"{median_ms(skactiveml_gsx, max(1, repeats // 2)):.1f}"
    gsx = median_ms(through_labelwise("gsx", embeddings=x, labeled_embeddings=lx), repeats)
    igs = median_ms(through_labelwise("igs", embeddings=x, labeled_embeddings=lx,
                                      regression_mean=f, labeled_targets=ly), repeats)  # fmt: skip
    return [
        (f"gsx k={K}, {n}×32 f64, 20 labeled", gsx, median_ms(numpy_gsx, repeats), peer),
        (f"igs k={K}, {n}×32 f64, 20 labeled", igs, float("nan"), "—"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    repeats = parser.parse_args().repeats
    rng = np.random.default_rng(0)
    rows: list[tuple[str, float, float, str]] = []

    # Segmentation: 400 images × 4 classes × 64 × 64 pixels, float32 (26 MB), 10% padding.
    seg = np.moveaxis(rng.dirichlet(np.ones(4), size=(400, 64, 64)), -1, 1).astype(np.float32)
    mask = np.ones((400, 64, 64), dtype=np.int32)
    mask[:, :, 58:] = 0
    valid = mask.astype(bool)

    def numpy_structured_entropy() -> None:
        h = numpy_entropy(seg, axis=1)
        top_k(np.where(valid, h, 0).sum(axis=(1, 2)) / valid.sum(axis=(1, 2)))

    lw = median_ms(through_labelwise("structured_entropy", structured_probabilities=seg,
                                     structured_mask=mask), repeats)  # fmt: skip
    floor = median_ms(numpy_structured_entropy, repeats)
    rows.append(("structured_entropy, 400×4×64×64 f32, masked mean", lw, floor, "—"))

    committee = np.moveaxis(rng.dirichlet(np.ones(4), size=(5, 100, 64, 64)), -1, 2).astype(
        np.float32
    )
    valid_c = valid[:100]

    def numpy_structured_bald() -> None:
        mean = committee.mean(axis=0)
        mi = numpy_entropy(mean, axis=1) - numpy_entropy(committee, axis=2).mean(axis=0)
        top_k(np.where(valid_c, mi, 0).sum(axis=(1, 2)) / valid_c.sum(axis=(1, 2)))

    lw = median_ms(through_labelwise("structured_bald", structured_committee=committee,
                                     structured_mask=mask[:100]), repeats)  # fmt: skip
    floor = median_ms(numpy_structured_bald, repeats)
    rows.append(("structured_bald, 5×100×4×64×64 f32, masked mean", lw, floor, "—"))

    multilabel = rng.uniform(size=(1_000_000, 20)).astype(np.float32)

    def numpy_multilabel_entropy() -> None:
        p = multilabel.astype(np.float64)
        top_k((-(p * np.log(p)) - (1 - p) * np.log(1 - p)).mean(axis=1))

    lw = median_ms(through_labelwise("multilabel_entropy", multilabel_probabilities=multilabel),
                   repeats)  # fmt: skip
    floor = median_ms(numpy_multilabel_entropy, repeats)
    rows.append(("multilabel_entropy, 1M×20 f32", lw, floor, "—"))

    for n in (50_000, 3_000):
        rows += greedy_rows(rng, n, repeats)

    labels = rng.integers(0, 5, size=(10, 100_000))
    labels[1:] = np.where(rng.uniform(size=(9, 100_000)) < 0.05, labels[1:], labels[:-1])
    from sklearn.metrics import cohen_kappa_score

    request = pb.CheckStoppingRequest()
    from labelwise.tensors import encode_tensor
    from labelwise_server.stopping import decode_stopping, evaluate

    request.stop_set_predictions.CopyFrom(encode_tensor(labels))
    payload = request.SerializeToString()
    lw = median_ms(lambda: evaluate(decode_stopping(pb.CheckStoppingRequest.FromString(payload),
                                                     1 << 30)), repeats)  # fmt: skip
    floor = median_ms(lambda: [cohen_kappa(labels[i], labels[i + 1]) for i in range(9)], repeats)
    peer = median_ms(lambda: [cohen_kappa_score(labels[i], labels[i + 1]) for i in range(9)],
                     repeats)  # fmt: skip
    rows.append(("CheckStopping, 10 rounds × 100k labels (all criteria)", lw, floor,
                 f"{peer:.1f}"))  # fmt: skip

    print(f"Median of {repeats} runs, in process (parse + validate + select), one thread.")
    print()
    print("| scenario | labelwise ms | NumPy floor ms | labelwise / floor | peer ms |")
    print("|---|---:|---:|---:|---:|")
    for name, ms, floor_ms, peer_ms in rows:
        ratio = "—" if np.isnan(floor_ms) else f"{ms / floor_ms:.2f}"
        floor_text = "—" if np.isnan(floor_ms) else f"{floor_ms:.1f}"
        print(f"| {name} | {ms:.1f} | {floor_text} | {ratio} | {peer_ms} |")
    print()
    print("Peers: scikit-activeml 1.0.1 GreedySamplingX (gsx); scikit-learn cohen_kappa_score "
          "(CheckStopping's floor column is labelwise's own cohen_kappa alone).")  # fmt: skip


if __name__ == "__main__":
    main()
