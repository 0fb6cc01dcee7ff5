"""The one permission check every owned-object endpoint gets (NetBox's utilities/testing style).

    check_private_to_owner(api, list_url="/api/v1/backtests/", obj=run, owner=alice,
                           colleague=bob, outsider=charlie, operator=olivia)

asserts: the owner sees it in the list and in detail; an outsider gets 404 (never 403, which
would leak that it exists) and does not see it listed, nor can change or delete it; an operator
sees it; once shared for viewing, the colleague sees it but cannot delete it.
"""
from __future__ import annotations

from apps.accounts.services import object_share


def _ids(response) -> set:
    body = response.json()
    rows = body["results"] if isinstance(body, dict) and "results" in body else body
    return {row["id"] for row in rows}


def check_private_to_owner(api, *, list_url: str, obj, owner, colleague, outsider, operator, detail_url=None,
                           patch: dict | None = None) -> None:
    detail_url = detail_url or f"{list_url}{obj.pk}/"
    assert obj.pk in _ids(api(owner).get(list_url)), "owner should see their object in the list"
    assert api(owner).get(detail_url).status_code == 200

    stranger = api(outsider)
    assert obj.pk not in _ids(stranger.get(list_url)), "an outsider must not see it listed"
    assert stranger.get(detail_url).status_code == 404
    assert stranger.patch(detail_url, patch or {}, format="json").status_code in (404, 405)
    assert stranger.delete(detail_url).status_code in (404, 405)

    assert obj.pk in _ids(api(operator).get(list_url)), "operators see everything"
    assert api(operator).get(detail_url).status_code == 200

    assert api(colleague).get(detail_url).status_code == 404
    object_share(obj=obj, with_user=colleague, actions=("view",), reason="test")
    assert api(colleague).get(detail_url).status_code == 200
    assert obj.pk in _ids(api(colleague).get(list_url))
    assert api(colleague).delete(detail_url).status_code in (403, 405), "view-only share must not allow delete"
    assert type(obj).objects.filter(pk=obj.pk).exists()
