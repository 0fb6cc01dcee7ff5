"""Failure points of the job runner turned into alerts (connected in AlertsConfig.ready).

- A download that fails raises an error alert about that download; when it is retried and
  succeeds, the alert resolves itself.
- A finished download that leaves open data-quality issues in its series (rejected rows, gaps
  the exchange could still fill) raises a warning for its owner; a later download that leaves
  none resolves it.
- A job whose worker died (crash recovery re-queued or failed it) raises an alert about that job
  (owner and operators); the job later succeeding resolves it.
"""
from __future__ import annotations

from django.db.models import Count

from apps.marketdata.models import DataQualityIssue
from tradepulse.core.jobs import JobState

from .services import alert_raise, alert_resolve

DOWNLOAD = "marketdata.download"


def _download_finished(job, state: str, error_code: str) -> None:
    key = f"download-failed:{job.pk}"
    if state == JobState.FAILED:
        alert_raise(severity="error", source="marketdata", title=f"Download failed: {job.market.symbol} {job.timeframe}",
                    message=job.error, target=job, key=key,
                    context={"download": job.pk, "error_code": error_code, "rows_stored": job.rows_stored})
    elif state == JobState.SUCCEEDED:
        alert_resolve(source="marketdata", key=key, reason="The download was run again and succeeded.")
    if state == JobState.CANCELLED:
        return
    issues = (DataQualityIssue.objects.filter(market=job.market, timeframe=job.timeframe, resolved_at__isnull=True,
                                              exchange_has_no_data=False)
              .values("kind").annotate(n=Count("id")).order_by("kind"))
    counts = {row["kind"]: row["n"] for row in issues}
    quality_key = f"quality:{job.market_id}:{job.timeframe}:{job.owner_id}"
    if counts:
        total = sum(counts.values())
        detail = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in counts.items())
        alert_raise(severity="warning", source="marketdata",
                    title=f"Data quality: {total} open issue{'s' if total != 1 else ''} in {job.market.symbol} "
                          f"{job.timeframe}",
                    message=f"{detail}. See the market data page; 'fill gaps' re-downloads what the exchange has.",
                    target=job, key=quality_key, context={"market": job.market_id, "timeframe": job.timeframe,
                                                          "issues": counts})
    else:
        alert_resolve(source="marketdata", key=quality_key, reason="No open data-quality issues left in the series.")


def on_job_finished(sender, *, job_type, job, state, error_code="", **_):
    if job_type.name == DOWNLOAD:
        _download_finished(job, state, error_code)
    if state == JobState.SUCCEEDED:
        alert_resolve(source="jobs", key=f"worker-lost:{job_type.name}:{job.pk}",
                      reason="The job ran again and succeeded.")


def on_job_recovered(sender, *, job_type, job, action, reason, **_):
    what = {"requeued": "queued again", "failed": "failed", "cancelled": "cancelled"}.get(action, action)
    alert_raise(severity="warning" if action == "requeued" else "error", source="jobs",
                title=f"Worker lost: {job} {what}", message=reason, target=job,
                key=f"worker-lost:{job_type.name}:{job.pk}",
                context={"job_type": job_type.name, "job": job.pk, "action": action, "worker": job.worker})
