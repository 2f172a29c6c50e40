"""One sync: a Label Studio project's unlabeled tasks, ranked by labelwise, written back.

1. Read every task through Label Studio's API (paged). Unlabeled tasks (`is_labeled` false)
   form the pool; the model outputs or features each carries in its data (fields named by the
   caller) become the pool's arrays; labeled tasks' embeddings, where given, the labeled set.
2. Ask labelwise (SelectQueries) for the caller's strategy's top k of the pool.
3. Write the ranking back as predictions of one model version, `<prefix>@<strategy>.<digest>`,
   whose `score` is the rank scaled to [0, 1): 0 for labelwise's first pick, lower first,
   which is the order in which Label Studio's "Uncertainty sampling" label stream serves
   tasks and in which a Data Manager tab sorted by prediction score lists them. The new
   version is imported in full before the project's `model_version` is switched to it, and
   only then are older `<prefix>@…` versions deleted: annotators never see half a ranking.
   The digest names the ranking, so a run that finds the same ranking changes nothing.
4. Optionally set the project's sampling to "Uncertainty sampling" and keep a Data Manager
   tab (view) ordered by prediction score.
"""

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
import numpy as np
import numpy.typing as npt

from labelwise import Client, LabelwiseError
from labelwise.client import ParamValue
from labelwise_labelstudio.api import LabelStudio

UNCERTAINTY_SAMPLING = "Uncertainty sampling"
# The Data Manager ordering key of the prediction score column (ascending: lowest first).
SCORE_ORDERING = "tasks:predictions_score"
# Predictions sent to Label Studio per import call.
IMPORT_CHUNK = 1000
DEFAULT_MAX_TASKS = 100_000
# Most numbers the pool's arrays may hold together, checked before they are built.
DEFAULT_MAX_VALUES = 1 << 26
_TRANSIENT = (
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
)


class SyncError(Exception):
    """A sync cannot proceed: bad options, bad task data, or labelwise refused the request."""


class ServiceUnavailable(SyncError):
    """labelwise did not answer (unreachable, overloaded, or past the deadline): try later."""


@dataclass(frozen=True)
class SyncOptions:
    """What to rank and how to write it back. Field names are keys of each task's data."""

    project: int
    strategy: str
    params: Mapping[str, ParamValue] = field(default_factory=dict)
    probabilities_field: str | None = None
    logits_field: str | None = None
    embeddings_field: str | None = None
    # Model mode: labelwise runs this ONNX model on each task's features_field (or
    # embeddings_field) in its sandbox; model_output is "probabilities" or "logits".
    model: str | None = None
    features_field: str | None = None
    model_output: str = "probabilities"
    batch_size: int | None = None  # None: rank every unlabeled task
    seed: int = 0
    model_version_prefix: str = "labelwise"
    view_title: str | None = "labelwise"  # None: no Data Manager tab
    set_sampling: bool = True
    max_tasks: int = DEFAULT_MAX_TASKS
    max_values: int = DEFAULT_MAX_VALUES
    deadline: float = 120.0

    def check(self) -> None:
        if self.project < 1:
            raise SyncError("project must be a Label Studio project id (>= 1)")
        if not self.strategy:
            raise SyncError("a strategy is required")
        if self.batch_size is not None and self.batch_size < 1:
            raise SyncError("batch size must be at least 1")
        if self.model is None and self.features_field is not None:
            raise SyncError("a features field is read only in model mode (give a model)")
        if self.model is not None and not (self.features_field or self.embeddings_field):
            raise SyncError("model mode needs a features field (or an embeddings field)")
        if self.model is None and not (
            self.probabilities_field or self.logits_field or self.embeddings_field
        ):
            raise SyncError(
                "nothing to rank by: give a probabilities, logits or embeddings field, "
                "or a model and a features field"
            )
        if self.model_output not in ("probabilities", "logits"):
            raise SyncError("model output must be 'probabilities' or 'logits'")
        prefix = self.model_version_prefix
        if not prefix or "@" in prefix or len(prefix) > 64:
            raise SyncError("the model version prefix must be 1-64 characters without '@'")
        if self.max_tasks < 1 or self.max_values < 1 or self.deadline <= 0:
            raise SyncError("max tasks, max values and the deadline must be positive")


@dataclass(frozen=True)
class Pool:
    """The unlabeled tasks labelwise ranks, as arrays row-aligned with task_ids."""

    task_ids: list[int]
    arrays: dict[str, npt.NDArray[np.float64]]
    labeled_embeddings: npt.NDArray[np.float64] | None
    missing: list[int]  # unlabeled tasks without every input field: not ranked
    labeled: int


@dataclass(frozen=True)
class SyncReport:
    """What a sync found and did."""

    model_version: str  # "" when nothing was ranked
    ranking: list[int]  # task ids, the first to label first
    unlabeled: int
    missing: list[int]
    labeled: int
    changed: bool
    created: int
    deleted: int
    sampling: str
    view: int | None


def _row(task_id: int, name: str, value: object) -> list[float]:
    """One task's field as a flat list of finite numbers."""
    if not isinstance(value, list) or not value:
        raise SyncError(f"task {task_id}: data field {name!r} must be a non-empty list of numbers")
    row: list[float] = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int | float) or not math.isfinite(item):
            raise SyncError(f"task {task_id}: data field {name!r} holds a non-finite or non-number")
        row.append(float(item))
    return row


def build_pool(tasks: Iterable[Mapping[str, Any]], options: SyncOptions) -> Pool:
    """The pool from Label Studio tasks (as /api/tasks lists them), bounded by the options."""
    fields = {
        "probabilities": options.probabilities_field,
        "logits": options.logits_field,
        "embeddings": options.embeddings_field,
        "model_inputs": options.features_field if options.model is not None else None,
    }
    wanted = {input_name: f for input_name, f in fields.items() if f}
    rows: dict[str, list[list[float]]] = {name: [] for name in wanted}
    widths: dict[str, int] = {}
    labeled_rows: list[list[float]] = []
    task_ids: list[int] = []
    missing: list[int] = []
    labeled = 0
    seen = 0
    values = 0
    for task in tasks:
        seen += 1
        if seen > options.max_tasks:
            raise SyncError(
                f"the project has more than {options.max_tasks} tasks; raise --max-tasks"
            )
        task_id = task.get("id")
        data = task.get("data")
        if not isinstance(task_id, int) or not isinstance(data, dict):
            raise SyncError("Label Studio listed a task without an id or data")
        if task.get("is_labeled"):
            labeled += 1
            embedding = data.get(options.embeddings_field) if options.embeddings_field else None
            if embedding is not None and options.embeddings_field:
                row = _row(task_id, options.embeddings_field, embedding)
                labeled_rows.append(row)
                values += len(row)
            continue
        if any(data.get(f) is None for f in wanted.values()):
            missing.append(task_id)
            continue
        for input_name, field_name in wanted.items():
            row = _row(task_id, field_name, data[field_name])
            width = widths.setdefault(input_name, len(row))
            if len(row) != width:
                raise SyncError(
                    f"task {task_id}: data field {field_name!r} has {len(row)} values, "
                    f"the first unlabeled task's has {width}"
                )
            rows[input_name].append(row)
            values += len(row)
        if values > options.max_values:
            raise SyncError(f"the pool holds more than {options.max_values} numbers")
        task_ids.append(task_id)
    arrays = {name: np.asarray(r, dtype=np.float64) for name, r in rows.items() if r}
    labeled_embeddings = None
    if labeled_rows and task_ids:
        width = widths.get("embeddings", len(labeled_rows[0]))
        if any(len(r) != width for r in labeled_rows):
            raise SyncError(
                f"labeled tasks' {options.embeddings_field!r} differ in length from the pool's"
            )
        labeled_embeddings = np.asarray(labeled_rows, dtype=np.float64)
    return Pool(task_ids, arrays, labeled_embeddings, missing, labeled)


def rank(client: Client, pool: Pool, options: SyncOptions) -> list[int]:
    """labelwise's top k of the pool, as task ids in pick order."""
    if not pool.task_ids:
        return []
    k = min(options.batch_size or len(pool.task_ids), len(pool.task_ids))
    kwargs: dict[str, Any] = dict(pool.arrays)
    if pool.labeled_embeddings is not None:
        kwargs["labeled_embeddings"] = pool.labeled_embeddings
    if options.model is not None:
        kwargs["model"] = options.model
        kwargs["model_output"] = options.model_output
    try:
        results = client.select(
            strategies=[(options.strategy, dict(options.params))],
            k=k,
            seed=options.seed,
            deadline=options.deadline,
            **kwargs,
        )
    except LabelwiseError as err:
        if err.code in _TRANSIENT:
            raise ServiceUnavailable(f"labelwise: {err}") from None
        fields = "; ".join(f"{v.field}: {v.description}" for v in err.violations)
        raise SyncError(f"labelwise: {err}" + (f" ({fields})" if fields else "")) from None
    except OSError as err:  # the model file
        raise SyncError(f"cannot read the model: {err}") from None
    indices = results[options.strategy].indices
    return [pool.task_ids[int(i)] for i in indices]


def scores(ranking: Sequence[int]) -> list[float]:
    """Prediction scores for a ranking: rank / k, so the first pick has the lowest."""
    k = len(ranking)
    return [r / k for r in range(k)]


def model_version(prefix: str, strategy: str, ranking: Sequence[int]) -> str:
    """`<prefix>@<strategy>.<12 hex>`: the digest names the ranking (task ids in order)."""
    digest = hashlib.sha256(json.dumps(list(ranking)).encode()).hexdigest()[:12]
    return f"{prefix}@{strategy}.{digest}"


def _ensure_view(ls: LabelStudio, project: int, title: str) -> int:
    """A Data Manager tab titled title, ordered by prediction score; created or fixed."""
    for view in ls.views(project):
        data = view.get("data") if isinstance(view.get("data"), dict) else {}
        if isinstance(data, dict) and data.get("title") == title:
            view_id = int(view["id"])
            if data.get("ordering") != [SCORE_ORDERING]:
                ls.update_view(view_id, project, {**data, "ordering": [SCORE_ORDERING]})
            return view_id
    created = ls.create_view(project, {"title": title, "ordering": [SCORE_ORDERING]})
    return int(created["id"])


def sync(ls: LabelStudio, client: Client, options: SyncOptions) -> SyncReport:
    """Rank the project's unlabeled tasks with labelwise and write the order back."""
    options.check()
    project = ls.project(options.project)
    pool = build_pool(ls.tasks(options.project), options)
    ranking = rank(client, pool, options)
    prefix = options.model_version_prefix + "@"
    version = model_version(options.model_version_prefix, options.strategy, ranking)
    versions = ls.model_versions(options.project)
    current = project.get("model_version") or ""
    created = deleted = 0
    changed = False
    if ranking and not (current == version and versions.get(version) == len(ranking)):
        changed = True
        if version in versions:  # left half-written by an interrupted run
            deleted += ls.delete_model_version(options.project, version)
        predictions = [
            {"task": task, "score": score, "model_version": version, "result": []}
            for task, score in zip(ranking, scores(ranking), strict=True)
        ]
        for start in range(0, len(predictions), IMPORT_CHUNK):
            chunk = predictions[start : start + IMPORT_CHUNK]
            created += ls.import_predictions(options.project, chunk)
        ls.update_project(options.project, {"model_version": version})
    elif not ranking and current.startswith(prefix):
        changed = True
        ls.update_project(options.project, {"model_version": ""})
    for old in versions:
        if old.startswith(prefix) and old != version:
            deleted += ls.delete_model_version(options.project, old)
    sampling = str(project.get("sampling") or "")
    if options.set_sampling and sampling != UNCERTAINTY_SAMPLING:
        ls.update_project(options.project, {"sampling": UNCERTAINTY_SAMPLING})
        sampling = UNCERTAINTY_SAMPLING
    view = _ensure_view(ls, options.project, options.view_title) if options.view_title else None
    return SyncReport(
        model_version=version if ranking else "",
        ranking=ranking,
        unlabeled=len(pool.task_ids) + len(pool.missing),
        missing=pool.missing,
        labeled=pool.labeled,
        changed=changed,
        created=created,
        deleted=deleted,
        sampling=sampling,
        view=view,
    )
