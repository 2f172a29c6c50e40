"""Embeddings [n, d] of the pool and [l, d] of the labeled set (diversity strategies)."""

from labelwise_server.checks import check_embedding_values, check_matrix
from labelwise_server.decode.fields import Fields
from labelwise_server.errors import InvalidArgument
from labelwise_server.strategies._types import RealArray


def decode_embeddings(fields: Fields) -> RealArray | None:
    embeddings = fields.get("embeddings")
    if embeddings is not None:
        check_matrix(embeddings, "embeddings", "[n, d]")
        check_embedding_values(embeddings, "embeddings")
    return embeddings


def check_labeled_embeddings(labeled: RealArray) -> None:
    """[l, d], either axis possibly empty; values as for embeddings."""
    check_matrix(labeled, "labeled_embeddings", "[l, d]", allow_empty=True)
    check_embedding_values(labeled, "labeled_embeddings")


def check_labeled_width(labeled: RealArray, embeddings: RealArray, source: str) -> None:
    """labeled_embeddings has the d of the pool's embeddings (source names where they came from)."""
    if labeled.shape[1] != embeddings.shape[1]:
        raise InvalidArgument(
            "labeled_embeddings.shape",
            f"must have the same d as {source} ({embeddings.shape[1]}); got {labeled.shape[1]}",
        )
