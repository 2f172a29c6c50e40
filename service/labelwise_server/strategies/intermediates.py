"""Values several strategies share, computed at most once per block of rows.

A request that asks for margin, ratio and least confidence sorts each row's
top two once; one that asks for BALD, consensus entropy and KL to consensus
averages the committee and takes its entropy once.
"""

from collections.abc import Iterator
from functools import cached_property

from labelwise_server.strategies import committee as qbc
from labelwise_server.strategies import uncertainty
from labelwise_server.strategies._types import FloatArray, Pool, RealArray


class Intermediates:
    """Lazily computed, cached functions of one block of rows."""

    def __init__(self, probabilities: RealArray | None, committee: RealArray | None) -> None:
        self._probabilities = probabilities  # [b, c]
        self._committee = committee  # [m, b, c]

    @property
    def probabilities(self) -> RealArray:
        if self._probabilities is None:
            raise LookupError("probabilities")
        return self._probabilities

    @property
    def committee(self) -> RealArray:
        if self._committee is None:
            raise LookupError("committee")
        return self._committee

    @property
    def members(self) -> int:
        return int(self.committee.shape[0])

    @cached_property
    def top2(self) -> RealArray:
        return uncertainty.top_two(self.probabilities)

    @cached_property
    def entropy(self) -> FloatArray:
        return uncertainty.entropy_scores(self.probabilities)

    @cached_property
    def consensus(self) -> RealArray:
        return qbc.consensus(self.committee)

    @cached_property
    def consensus_entropy(self) -> FloatArray:
        return uncertainty.entropy_scores(self.consensus)

    @cached_property
    def mean_member_entropy(self) -> FloatArray:
        return qbc.mean_member_entropy(self.committee)

    @cached_property
    def mutual_information(self) -> FloatArray:
        return self.consensus_entropy - self.mean_member_entropy

    @cached_property
    def votes(self) -> FloatArray:
        return qbc.vote_counts(self.committee)


def block_rows(pool: Pool, block_bytes: int) -> int:
    """Rows per block of pool_blocks: about block_bytes of probabilities and committee rows,
    at least 1024 (a stream scored as it arrives cuts the same blocks: see pool_stream.py)."""
    row_bytes = 0
    if pool.probabilities is not None:
        row_bytes += pool.probabilities.shape[1] * pool.probabilities.itemsize
    if pool.committee is not None:
        row_bytes += pool.committee.shape[0] * pool.committee.shape[2] * pool.committee.itemsize
    return max(1024, block_bytes // max(row_bytes, 1))


def pool_blocks(pool: Pool, block_bytes: int) -> Iterator[tuple[int, int, Intermediates]]:
    """(start, end, Intermediates) of consecutive row blocks of the pool's probabilities and
    committee, each about block_bytes of them (at least 1024 rows)."""
    step = block_rows(pool, block_bytes)
    for start in range(0, pool.n, step):
        end = min(start + step, pool.n)
        block = Intermediates(
            None if pool.probabilities is None else pool.probabilities[start:end],
            None if pool.committee is None else pool.committee[:, start:end],
        )
        yield start, end, block
