"""Every API endpoint over an owned model gets the permission suite, found by walking the router.

A new viewset registered under /api/v1/ whose model is an OwnedModel is covered without anyone
remembering to write the test: the owner sees it, an outsider gets 404 on the object and on
every route under it (never 403, which would leak that it exists), an operator sees it, and a
colleague with a view-only share sees it but cannot change it through any route. An owned
endpoint with no factory in tests/owned_factories.py fails here, so the next engineer adds one.
"""
from __future__ import annotations

import pytest
from django.forms.models import model_to_dict

from tests.owned_factories import factory_for
from tests.permission_suite import check_private_to_owner
from tradepulse.core.models import OwnedModel

WRITE_METHODS = ("post", "put", "patch", "delete")


def _model_of(viewset):
    queryset = getattr(viewset, "queryset", None)
    if queryset is not None:
        return queryset.model
    meta = getattr(getattr(viewset, "serializer_class", None), "Meta", None)
    return getattr(meta, "model", None)


def owned_endpoints() -> list[tuple[str, type, type]]:
    from tradepulse.api_urls import router

    found = []
    for prefix, viewset, _basename in router.registry:
        model = _model_of(viewset)
        if model is not None and issubclass(model, OwnedModel):
            found.append((prefix, viewset, model))
    return found


ENDPOINTS = owned_endpoints()


def test_the_walk_finds_the_owned_endpoints_we_know():
    """Guards the walk itself: if it found nothing, every test below would pass vacuously."""
    assert {"backtests", "strategy-configs", "download-jobs", "training-runs"} <= {p for p, _, _ in ENDPOINTS}


def _detail_routes(viewset, base: str) -> list[tuple[str, str]]:
    """(method, url) of every route under one object: the detail URL and each detail action."""
    routes = [("get", base)]
    routes += [(m, base) for m in ("put", "patch", "delete") if hasattr(viewset, {"put": "update",
                                                                                 "patch": "partial_update",
                                                                                 "delete": "destroy"}[m])]
    for action in viewset.get_extra_actions():
        if action.detail:
            routes += [(method, f"{base}{action.url_path}/") for method in action.mapping]
    return routes


def _state(obj) -> dict:
    fresh = type(obj).objects.get(pk=obj.pk)
    return {k: v for k, v in model_to_dict(fresh).items() if k not in ("updated_at",)}


@pytest.mark.parametrize("prefix, viewset, model", ENDPOINTS, ids=[p for p, _, _ in ENDPOINTS])
def test_every_owned_endpoint_is_private_to_its_owner(prefix, viewset, model, api, alice, bob, charlie, olivia):
    make = factory_for(model)
    assert make is not None, (
        f"/api/v1/{prefix}/ serves {model._meta.label}, an owned model, but tests/owned_factories.py has no "
        f"factory for it: add one so the permission suite covers this endpoint.")
    obj = make(alice)
    list_url = f"/api/v1/{prefix}/"
    check_private_to_owner(api, list_url=list_url, obj=obj, owner=alice, colleague=bob, outsider=charlie,
                           operator=olivia)

    base = f"{list_url}{obj.pk}/"
    routes = _detail_routes(viewset, base)
    before = _state(obj)
    stranger = api(charlie)
    for method, url in routes:
        status = getattr(stranger, method)(url, {}, format="json").status_code
        assert status in (404, 405), f"{method.upper()} {url} by an outsider: {status}, expected 404"
    assert _state(obj) == before, "an outsider changed the object"

    # bob holds a view-only share now (check_private_to_owner gave it): he may read, not change.
    colleague = api(bob)
    for method, url in routes:
        if method in WRITE_METHODS:
            getattr(colleague, method)(url, {}, format="json")
            assert _state(obj) == before, f"{method.upper()} {url} by a view-only colleague changed the object"
    assert colleague.get(base).status_code == 200
