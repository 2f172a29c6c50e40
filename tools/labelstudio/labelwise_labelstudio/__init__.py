"""labelwise-labelstudio: Label Studio tasks ordered by labelwise's active-learning ranking.

from labelwise import Client
from labelwise_labelstudio import LabelStudio, SyncOptions, sync
ls = LabelStudio("http://localhost:8080", api_key)
with Client("localhost:50051") as client:
    report = sync(ls, client, SyncOptions(project=1, strategy="entropy",
                                          probabilities_field="probs"))
report.ranking  # task ids, the first to label first
"""

from labelwise_labelstudio.api import LabelStudio, LabelStudioError
from labelwise_labelstudio.sync import (
    Pool,
    ServiceUnavailable,
    SyncError,
    SyncOptions,
    SyncReport,
    build_pool,
    model_version,
    scores,
    sync,
)

__all__ = [
    "LabelStudio",
    "LabelStudioError",
    "Pool",
    "ServiceUnavailable",
    "SyncError",
    "SyncOptions",
    "SyncReport",
    "build_pool",
    "model_version",
    "scores",
    "sync",
]
