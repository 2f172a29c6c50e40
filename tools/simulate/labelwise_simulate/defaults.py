"""The simulation's defaults, importable without scikit-learn (the CLI reads them for --help)."""

from dataclasses import dataclass

BUILT_IN = (
    "digits",
    "breast_cancer",
    "wine",
    "synthetic",
    "segment",
    "mnist_5k",
    "seattle_weather",
)
# What a bare `labelwise simulate` runs: scikit-learn's data, quick enough for every strategy.
DEFAULT_DATA = BUILT_IN[:4]
# The classic pool-based budgets, in labels (including the initial labeled set).
DEFAULT_BUDGETS = {
    "digits": 500,
    "breast_cancer": 200,
    "wine": 100,
    "synthetic": 800,
    "segment": 300,
    "mnist_5k": 300,
    "seattle_weather": 300,
}
# Shares of full accuracy whose labels-to-reach the report compares.
TARGETS = (0.90, 0.95, 0.98, 0.99)
# Model families the loop can train (--model).
MODELS = ("logistic", "random_forest", "mlp")
USER_DEFAULT_BUDGET = 500


@dataclass(frozen=True)
class Protocol:
    """Every choice of the loop; the defaults are the classic pool-based protocol."""

    test_fraction: float = 0.3
    initial_per_class: int = 2
    batch_size: int = 10
    max_iter: int = 2000
    model: str = "logistic"  # one of MODELS
    # A run that has not reached the highest target (TARGETS in report.py) of full accuracy at
    # the budget goes on labeling, up to cap_factor × budget labels, so that a saving is a
    # number rather than a bound; 1.0 stops every run at the budget.
    cap_factor: float = 3.0
    committee_model: str = "lr"  # "lr": bootstrap copies of the model; "mlp": MLPs by seed
    committee_size: int = 5
    mlp_hidden: int = 64
    # With per-item costs: spend a dollar budget with the service's costs + budget fields,
    # rather than a label budget with costs only counted.
    cost_aware: bool = False
