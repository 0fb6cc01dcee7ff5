"""Quality issues found by a user's download belong with that download (issue 9, finding 8):
another trader neither sees them nor resolves them; operators see and resolve all."""
from __future__ import annotations

import numpy as np

from apps.marketdata import services
from apps.marketdata.models import DataQualityIssue

from .conftest import MIN, T0


def test_issues_of_another_users_download_are_private(api, alice, bob, olivia, btc):
    job = services.download_start(owner=bob, market=btc, timeframe="1m", start_ms=T0, end_ms=T0 + 10 * MIN,
                                  enqueue=False)
    bad = np.array([[T0, 100, 99, 98, 100.5, 1]], dtype=float)
    services.candles_ingest(market=btc, timeframe="1m", rows=bad, job=job)
    issue = DataQualityIssue.objects.get(job=job)

    assert api(alice).get("/api/v1/quality-issues/").json()["count"] == 0
    assert api(alice).get(f"/api/v1/quality-issues/{issue.pk}/").status_code == 404
    assert api(alice).post(f"/api/v1/quality-issues/{issue.pk}/resolve/").status_code == 404
    assert api(bob).get(f"/api/v1/quality-issues/{issue.pk}/").status_code == 200
    assert api(olivia).get("/api/v1/quality-issues/").json()["count"] == 1
    assert api(bob).post(f"/api/v1/quality-issues/{issue.pk}/resolve/").json()["resolved_at"] is not None
