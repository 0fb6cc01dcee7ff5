"""Training runs: walk-forward optimisation of one strategy on one market and timeframe (an
optuna study per fold, tested on that fold's out-of-sample window, plus a final study on the
whole optimisation range tested on the hold-out); and the trials the live feed shows."""
from __future__ import annotations

from django.db import models
from django.urls import reverse

from apps.strategies.execution import ExecutionSettings
from tradepulse.core.jobs import Job

from .options import DEFAULTS


class Objective(models.TextChoices):
    SHARPE = "sharpe", "Sharpe ratio"
    SORTINO = "sortino", "Sortino ratio"
    CALMAR = "calmar", "Calmar ratio"
    PROFIT_FACTOR = "profit_factor", "Profit factor"
    COMPOSITE = "composite", "Composite (Sharpe, Sortino, Calmar, profit factor)"


class SamplerChoice(models.TextChoices):
    TPE = "tpe", "TPE"
    RANDOM = "random", "Random"
    GRID = "grid", "Grid"
    CMAES = "cmaes", "CMA-ES"


class Scheme(models.TextChoices):
    ROLLING = "rolling", "Rolling"
    ANCHORED = "anchored", "Anchored"


class TrainingRun(Job, ExecutionSettings):
    """Walk-forward optimisation of one strategy on one market and timeframe: `folds + 1`
    optuna studies of `n_trials` trials each, run by `n_workers` tasks, then validated
    (walk-forward out-of-sample, hold-out, DSR, PBO) by the last worker to finish."""

    name = models.CharField(max_length=150, blank=True)
    strategy_key = models.CharField(max_length=50, db_index=True)
    market = models.ForeignKey("marketdata.Market", on_delete=models.PROTECT, related_name="training_runs")
    timeframe = models.CharField(max_length=4)
    start = models.DateTimeField(help_text="First bar's open time (UTC), inclusive.")
    end = models.DateTimeField(help_text="End of the range (UTC), exclusive.")

    objective = models.CharField(max_length=16, choices=Objective.choices, default=DEFAULTS.objective)
    min_trades = models.PositiveIntegerField(default=DEFAULTS.min_trades, help_text="Windows with fewer closed trades are penalised.")
    sampler = models.CharField(max_length=8, choices=SamplerChoice.choices, default=DEFAULTS.sampler)
    n_trials = models.PositiveIntegerField(default=DEFAULTS.n_trials, help_text="Trials of EACH study (one per fold, one final).")
    timeout_s = models.FloatField(null=True, blank=True, help_text="Time budget per worker, seconds.")
    folds = models.PositiveSmallIntegerField(default=DEFAULTS.folds)
    scheme = models.CharField(max_length=8, choices=Scheme.choices, default=DEFAULTS.scheme)
    holdout_share = models.FloatField(default=DEFAULTS.holdout_share, help_text="Final share of the period the optimiser never sees.")
    seed = models.BigIntegerField(null=True, blank=True)
    n_workers = models.PositiveSmallIntegerField(default=DEFAULTS.n_workers)
    top_n = models.PositiveSmallIntegerField(default=DEFAULTS.top_n, help_text="Candidates validated and saved as configs.")

    code_version = models.CharField(max_length=64, blank=True,
                                    help_text="SHA-256 of the strategy's and the engine's source when the run was "
                                              "created (quant/strategies/provenance.py says what is hashed).")
    allow_gaps = models.BooleanField(default=False, help_text="Train through missing bars (listed in `gaps`).")
    gaps = models.JSONField(default=list, blank=True, help_text="Missing intervals inside the range, if allowed.")

    study_name = models.CharField(max_length=200, blank=True)
    batch = models.CharField(max_length=32, blank=True, db_index=True,
                             help_text="Runs created together (strategies × markets × timeframes) share this id.")
    holdout_start = models.DateTimeField(null=True, blank=True, help_text="Open of the first hold-out bar.")
    holdout_start_index = models.PositiveIntegerField(null=True, blank=True)
    trials_complete = models.PositiveIntegerField(default=0)
    trials_pruned = models.PositiveIntegerField(default=0)
    trials_failed = models.PositiveIntegerField(default=0)
    workers_finished = models.PositiveSmallIntegerField(default=0)
    worker_reports = models.JSONField(default=list, blank=True)
    validation_started_at = models.DateTimeField(null=True, blank=True)
    best_value = models.FloatField(null=True, blank=True)
    best_number = models.PositiveIntegerField(null=True, blank=True)
    best_params = models.JSONField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True, help_text="The training result (train() JSON shape).")
    verdict = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "-created_at"])]

    def get_absolute_url(self) -> str:
        return reverse("dashboard:training-detail", args=[self.pk])

    def __str__(self) -> str:
        return self.name or f"Training {self.pk} {self.strategy_key} {self.timeframe}"

    @property
    def trials_done(self) -> int:
        return self.trials_complete + self.trials_pruned

    @property
    def n_studies(self) -> int:
        """One study per walk-forward fold, plus the final study on the whole optimisation range."""
        return self.folds + 1

    @property
    def trials_budget(self) -> int:
        """Trials the whole run tries: `n_trials` in each study."""
        return self.n_trials * self.n_studies

    @property
    def trials_message(self) -> str:
        """One sentence for every counter on the page, so they cannot disagree."""
        return (f"{self.trials_done} of {self.trials_budget} trials ({self.n_studies} studies × {self.n_trials}): "
                f"{self.trials_complete} complete, {self.trials_pruned} pruned"
                + (f", {self.trials_failed} failed" if self.trials_failed else ""))


class TrainingTrial(models.Model):
    """One finished optuna trial of one of a run's studies, written by the worker that ran it
    (the live feed's rows)."""

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="trials")
    study = models.CharField(max_length=16, default="final", help_text='"fold-<i>" or "final".')
    fold = models.PositiveSmallIntegerField(null=True, blank=True,
                                            help_text="Walk-forward fold of the study; empty for the final study.")
    number = models.PositiveIntegerField(help_text="Trial number within its study.")
    state = models.CharField(max_length=10, db_index=True)
    params = models.JSONField(default=dict)
    value = models.FloatField(null=True, blank=True,
                              help_text="Objective value; a penalty, not a measurement, when `penalty` is set.")
    penalty = models.CharField(max_length=200, blank=True,
                               help_text="Why the value is a penalty (e.g. too few trades), empty for a real value.")
    windows = models.JSONField(default=list, blank=True, help_text="Per-window records of the study's window(s).")
    bar_ranges = models.JSONField(default=list, blank=True,
                                  help_text="Bar ranges the trial read: [{fold, read_start, start, end}].")
    pruned_reason = models.CharField(max_length=500, blank=True)
    worker_id = models.CharField(max_length=200, blank=True)
    retried_from = models.PositiveIntegerField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    duration_s = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["run", "id"]
        constraints = [models.UniqueConstraint(fields=["run", "study", "number"], name="training_trial_unique_number")]

    def __str__(self) -> str:
        return f"Trial {self.study} {self.number} of {self.run_id}"
