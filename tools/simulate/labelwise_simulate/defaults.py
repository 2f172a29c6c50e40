"""The simulation's defaults, importable without scikit-learn (the CLI reads them for --help)."""

from dataclasses import dataclass

BUILT_IN = ("digits", "breast_cancer", "wine", "synthetic")
# The classic pool-based budgets, in labels (including the initial labeled set).
DEFAULT_BUDGETS = {"digits": 500, "breast_cancer": 200, "wine": 100, "synthetic": 800}
USER_DEFAULT_BUDGET = 500


@dataclass(frozen=True)
class Protocol:
    """Every choice of the loop; the defaults are the classic pool-based protocol."""

    test_fraction: float = 0.3
    initial_per_class: int = 2
    batch_size: int = 10
    max_iter: int = 2000
    committee_model: str = "lr"  # "lr": bootstrap copies of the model; "mlp": MLPs by seed
    committee_size: int = 5
    mlp_hidden: int = 64
    # With per-item costs: spend a dollar budget with the service's costs + budget fields,
    # rather than a label budget with costs only counted.
    cost_aware: bool = False
