"""Issue 9, finding 7 (schema drift), found again by the fuzz test on the alert channels: a
wall-clock time such as quiet hours was returned as "01:47:46" but documented with OpenAPI's
`time` format, which is RFC 3339's full-time and needs an offset. Zone-less times of day are
LocalTimeField (tradepulse/core/api.py): HH:MM out, documented by a pattern."""
from __future__ import annotations

import re

from drf_spectacular.generators import SchemaGenerator


def test_quiet_hours_come_back_as_documented(api, alice):
    response = api(alice).post("/api/v1/alert-channels/", {
        "name": "night", "kind": "email", "quiet_start": "01:47:46", "quiet_end": "07:00"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["quiet_start"], body["quiet_end"]) == ("01:47", "07:00")
    prop = SchemaGenerator().get_schema(request=None, public=True)["components"]["schemas"]["Channel"]["properties"]
    for name in ("quiet_start", "quiet_end"):
        assert "format" not in prop[name]
        assert re.fullmatch(prop[name]["pattern"], body[name])
