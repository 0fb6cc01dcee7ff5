"""Issue 9, finding 7: strategy configs have no PUT (strategy, market and timeframe are fixed at
creation, so a full replace could only fail with a 400); PATCH changes what may change. The
schema says so too, so schemathesis never expects a PUT to work."""
from __future__ import annotations

from drf_spectacular.generators import SchemaGenerator

from apps.strategies.services import config_create
from tests.backtests.conftest import market  # noqa: F401


def test_put_is_not_offered_and_patch_works(api, alice, market):  # noqa: F811
    config = config_create(owner=alice, strategy_key="sma_cross", market=market, timeframe="1m", name="a")
    url = f"/api/v1/strategy-configs/{config.pk}/"
    put = api(alice).put(url, {"name": "b", "strategy_key": "sma_cross", "market": market.pk, "timeframe": "1m"},
                         format="json")
    assert put.status_code == 405
    patched = api(alice).patch(url, {"name": "b"}, format="json")
    assert patched.status_code == 200 and patched.json()["name"] == "b"
    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    assert "put" not in paths["/api/v1/strategy-configs/{id}/"] and "patch" in paths["/api/v1/strategy-configs/{id}/"]
