"""Training: optuna studies with walk-forward folds, a hold-out and overfitting statistics.

Pure Python + numpy + optuna; no Django. The Django layer (TrainingRun, Celery tasks, API,
dashboard) builds on these functions; README.md next to this file explains how.

Modules
-------
walkforward   hold-out split and walk-forward folds as half-open bar ranges
objective     Evaluator (per-window caches), objective values, make_objective()
storage       journal (Redis list / file) or RDB storage, with heartbeats
runner        studies, samplers, the worker loops run_trials() and run_studies()
pipeline      walk-forward optimisation: plan, one study per fold + final study, train()
validate      walk-forward OOS of the process; hold-out, DSR, PBO, stability of the offer
overfitting   deflated Sharpe ratio and PBO by CSCV
stability     objective at neighbouring parameters
verdict       plain-language verdict with reasons and overridable thresholds
"""

from .objective import (DEFAULT_MIN_TRADES, OBJECTIVES, PENALTY, Evaluator, make_objective,
                        max_warmup, objective_value, score_params)
from .overfitting import (deflated_sharpe_ratio, dsr_report, expected_max_sharpe, pbo_cscv,
                          probabilistic_sharpe)
from .pipeline import FINAL, Plan, TrainingResult, plan_training, study_names, train, validate_training
from .runner import (PRUNERS, SAMPLERS, WorkerReport, create_study, load_study, run_studies, run_trials,
                     study_progress, trial_record)
from .storage import make_storage, storage_url_from_database_url
from .stability import neighbours, parameter_stability
from .validate import validate_candidates, walkforward_report
from .verdict import Evidence, Thresholds, verdict_for
from .walkforward import Fold, Window, folds, holdout_split

__all__ = [
    "FINAL", "Plan", "plan_training", "run_studies", "study_names", "validate_training", "walkforward_report",
    "DEFAULT_MIN_TRADES", "OBJECTIVES", "PENALTY", "PRUNERS", "SAMPLERS", "Evaluator", "Evidence",
    "Fold", "Thresholds", "TrainingResult", "Window", "WorkerReport", "create_study",
    "deflated_sharpe_ratio", "dsr_report", "expected_max_sharpe", "folds", "holdout_split",
    "load_study", "make_objective", "make_storage", "max_warmup", "neighbours", "objective_value",
    "parameter_stability", "pbo_cscv", "probabilistic_sharpe", "run_trials", "score_params",
    "storage_url_from_database_url", "study_progress", "train", "trial_record",
    "validate_candidates", "verdict_for",
]
