"""Named reads for strategy configurations: their evidence, as graduation asks for it."""
from __future__ import annotations

from django.db.models import QuerySet

from .models import ConfigEvidence, StrategyConfig


def evidence_for(config: StrategyConfig, *, source: str | None = None) -> QuerySet[ConfigEvidence]:
    """A config's evidence, latest period first; only `source`'s when given."""
    rows = ConfigEvidence.objects.filter(config=config).select_related("run_type")
    return rows.filter(source=source) if source else rows


def latest_evidence(config: StrategyConfig, source: str) -> ConfigEvidence | None:
    """The most recent evidence of `source` for `config` (by end of period, then by when it was
    recorded), or None. Served by the (config, source, -period_end) index."""
    return evidence_for(config, source=source).order_by("-period_end", "-created_at").first()
