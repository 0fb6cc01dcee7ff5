"""Training's search and validation defaults, written once.

The service's keyword defaults, the model's field defaults, the API serializer (schema and
omitted fields), the dashboard form's initial values and the `train` command's options all
read `DEFAULTS`; none writes a default of its own.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class TrainingOptions:
    """How a training run searches and validates, with the value used when a field is omitted."""

    objective: str = "sharpe"
    min_trades: int = 10  # closed trades a window needs, else its score is a penalty
    sampler: str = "tpe"
    n_trials: int = 100  # trials of EACH study (one per fold, one final)
    timeout_s: float | None = None  # time budget per worker, seconds; None: no budget
    folds: int = 5
    scheme: str = "rolling"
    holdout_share: float = 0.2  # final share of the period the optimiser never sees
    seed: int | None = None  # None: a random seed
    n_workers: int = 1
    top_n: int = 5  # candidates validated and saved as configs

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def holdout_percent(self) -> float:
        """The hold-out share as the form shows it (percent of the period)."""
        return round(self.holdout_share * 100, 6)


DEFAULTS = TrainingOptions()
