"""Training serializers: the API's and the live events' payloads are the same.

Kept apart from api_training.py so the services (which publish with them) and the API
(which calls the services) do not import each other.
"""
from __future__ import annotations

from rest_framework import serializers

from apps.marketdata.models import Market
from tradepulse.core.api import DateTimeField, ScopedPrimaryKeyRelatedField

from .models import Objective, SamplerChoice, Scheme, TrainingRun, TrainingTrial
from .options import DEFAULTS
from apps.strategies.execution import EXECUTION_FIELDS
from apps.strategies.serializers import ExecutionSettingsSerializer

RUN_FIELDS = ["id", "name", "batch", "owner", "state", "progress", "message", "error", "error_code", "strategy_key",
              "market",
              "market_symbol", "exchange", "timeframe", "start", "end", "objective", "min_trades", "sampler",
              "n_trials", "timeout_s", "folds", "scheme", "holdout_share", "seed", "n_workers", "top_n", *EXECUTION_FIELDS,
              "allow_gaps", "gaps", "code_version", "study_name", "holdout_start", "n_studies", "trials_budget",
              "trials_complete", "trials_pruned", "trials_failed", "trials_done", "trials_message", "best_value",
              "best_number", "best_params", "verdict", "created_at",
              "started_at", "finished_at", "duration_s"]


class TrainingRunSerializer(serializers.ModelSerializer):
    """A run without its (large) result: lists and live events."""

    market_symbol = serializers.CharField(source="market.symbol", read_only=True)
    exchange = serializers.CharField(source="market.exchange.name", read_only=True)
    owner = serializers.CharField(source="owner.username", read_only=True)
    duration_s = serializers.FloatField(read_only=True, allow_null=True)
    trials_done = serializers.IntegerField(read_only=True)
    n_studies = serializers.IntegerField(read_only=True, help_text="Studies of the run: one per fold, one final.")
    trials_budget = serializers.IntegerField(read_only=True, help_text="n_trials × n_studies.")
    trials_message = serializers.CharField(read_only=True)

    class Meta:
        model = TrainingRun
        fields = RUN_FIELDS
        read_only_fields = fields


class TrainingRunDetailSerializer(TrainingRunSerializer):
    """A run with its result (folds, hold-out, DSR, PBO, candidates, configs created)."""

    class Meta(TrainingRunSerializer.Meta):
        fields = [*RUN_FIELDS, "result", "worker_reports"]
        read_only_fields = fields


class TrainingCreateSerializer(ExecutionSettingsSerializer):
    """What a user sends to start a training run; rules beyond shapes live in the service."""

    name = serializers.CharField(required=False, allow_blank=True, max_length=150)
    strategy_key = serializers.CharField()
    market = ScopedPrimaryKeyRelatedField(queryset=Market.objects.all())
    timeframe = serializers.CharField()
    start = DateTimeField()
    end = DateTimeField()
    # Omitted options take the one set of training defaults (apps/training/options.py).
    objective = serializers.ChoiceField(choices=Objective.choices, default=DEFAULTS.objective)
    min_trades = serializers.IntegerField(default=DEFAULTS.min_trades, min_value=0,
                                          help_text="Closed trades a window needs; fewer score a penalty (count).")
    sampler = serializers.ChoiceField(choices=SamplerChoice.choices, default=DEFAULTS.sampler)
    n_trials = serializers.IntegerField(default=DEFAULTS.n_trials, min_value=1, max_value=100_000,
                                        help_text="Trials of EACH study: one study per fold plus a final study.")
    timeout_s = serializers.FloatField(default=DEFAULTS.timeout_s, allow_null=True, min_value=1,
                                       help_text="Time budget per worker, seconds; null: none.")
    folds = serializers.IntegerField(default=DEFAULTS.folds, min_value=1, max_value=50,
                                     help_text="Walk-forward folds.")
    scheme = serializers.ChoiceField(choices=Scheme.choices, default=DEFAULTS.scheme)
    holdout_share = serializers.FloatField(default=DEFAULTS.holdout_share,
                                           help_text="Final share of the period never optimised on, a fraction "
                                                     "(0.2 = the last 20 %).")
    seed = serializers.IntegerField(default=DEFAULTS.seed, allow_null=True, help_text="null: a random seed.")
    n_workers = serializers.IntegerField(default=DEFAULTS.n_workers, min_value=1, max_value=64,
                                         help_text="Worker tasks sharing the run's studies.")
    top_n = serializers.IntegerField(default=DEFAULTS.top_n, min_value=1, max_value=50,
                                     help_text="Candidates validated and saved as configs.")
    allow_gaps = serializers.BooleanField(required=False, default=False,
                                          help_text="Train through missing bars; the gaps are listed on the result. "
                                                    "Without it a range with gaps is refused, naming them.")


class SeriesSerializer(serializers.Serializer):
    market = ScopedPrimaryKeyRelatedField(queryset=Market.objects.all())
    timeframe = serializers.CharField()


class TrainingBatchSerializer(TrainingCreateSerializer):
    """Several runs at once: every strategy × every series. Give `series` ([{market, timeframe}],
    e.g. the stored data you picked) or `markets` × `timeframes` (every pairing)."""

    strategy_key = None
    market = None
    timeframe = None
    strategy_keys = serializers.ListField(child=serializers.CharField(), min_length=1)
    series = SeriesSerializer(many=True, required=False)
    markets = ScopedPrimaryKeyRelatedField(queryset=Market.objects.all(), many=True, required=False)
    timeframes = serializers.ListField(child=serializers.CharField(), required=False)

    def validate(self, attrs):
        markets, timeframes = attrs.pop("markets", []), attrs.pop("timeframes", [])
        series = [(s["market"], s["timeframe"]) for s in attrs.pop("series", [])]
        series += [(market, tf) for market in markets for tf in timeframes]
        if not series:
            raise serializers.ValidationError({"series": "Give `series`, or `markets` and `timeframes`."})
        attrs["series"] = series
        return attrs


class TrainingTrialSerializer(serializers.ModelSerializer):
    class Meta:
        model = TrainingTrial
        fields = ["number", "study", "fold", "state", "params", "value", "penalty", "windows", "bar_ranges",
                  "pruned_reason", "worker_id", "retried_from", "started_at", "completed_at", "duration_s"]
