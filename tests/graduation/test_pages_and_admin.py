"""The dashboard pages (private like the API) and the admin: policies changed with a reason,
configs promoted from an action that asks for one."""
from __future__ import annotations

from apps.audit.models import AuditEvent
from apps.graduation.models import GraduationDecision, GraduationPolicy
from apps.strategies.models import StrategyConfig

from .conftest import research


def test_board_and_lineage_pages_are_private(client, alice, charlie, make_config):
    config = make_config(alice, name="private trend")
    research(config)
    client.force_login(charlie)
    assert client.get("/graduation/").status_code == 200
    assert client.get(f"/graduation/configs/{config.pk}/").status_code == 404
    client.force_login(alice)
    page = client.get(f"/graduation/configs/{config.pk}/").content.decode()
    assert "private trend" in page and 'data-source="training_oos"' in page and "abababababab" in page
    assert 'data-act="promote"' in page


def test_graduation_is_in_the_navigation(client, alice):
    client.force_login(alice)
    assert 'href="/graduation/"' in client.get("/").content.decode()


def test_admin_policy_change_needs_a_reason_and_is_audited(client, olivia):
    policy = GraduationPolicy.objects.get(kind="promote", from_stage="discovery")
    client.force_login(olivia)
    url = f"/admin/graduation/graduationpolicy/{policy.pk}/change/"
    assert client.get(url).status_code == 200
    form = {f: ("" if getattr(policy, f) is None else getattr(policy, f)) for f in GraduationPolicy.EDITABLE}
    form = {k: ("on" if v is True else v) for k, v in form.items() if v is not False}
    refused = client.post(url, {**form, "min_trades": 45})
    assert refused.status_code == 200 and GraduationPolicy.objects.get(pk=policy.pk).min_trades == policy.min_trades
    done = client.post(url, {**form, "min_trades": 45, "change_reason": "fewer trades in slow markets"})
    assert done.status_code == 302
    assert GraduationPolicy.objects.get(pk=policy.pk).min_trades == 45
    event = AuditEvent.objects.get(action="graduation.policy.updated")
    assert event.reason == "fewer trades in slow markets" and event.changes["min_trades"] == [30, 45]


def test_admin_promote_action_asks_for_a_reason(client, olivia, make_config):
    config = make_config(olivia, name="ops trend")
    research(config)
    client.force_login(olivia)
    url = "/admin/graduation/pipelineconfig/"
    ask = client.post(url, {"action": "promote", "_selected_action": [config.pk]})
    assert ask.status_code == 200 and "Reason (required" in ask.content.decode()
    assert StrategyConfig.objects.get(pk=config.pk).stage == "discovery"
    client.post(url, {"action": "promote", "_selected_action": [config.pk], "confirm": "1",
                      "reason": "checked the folds"})
    decision = GraduationDecision.objects.get(config=config)
    assert (decision.outcome, decision.actor, decision.reason) == ("promote", olivia, "checked the folds")
    assert client.get(f"/admin/graduation/graduationdecision/{decision.pk}/change/").status_code == 200


def test_policy_changes_reach_whoever_may_read_policies(alice, olivia, django_capture_on_commit_callbacks, published):
    from django.contrib.auth.models import AnonymousUser

    from apps.graduation import services
    from tradepulse.core import events

    assert events.may_subscribe(alice, "graduation-policies")
    assert not events.may_subscribe(AnonymousUser(), "graduation-policies")
    assert not events.may_subscribe(alice, "graduation-7")
    policy = GraduationPolicy.objects.get(kind="demote", from_stage="live")
    with django_capture_on_commit_callbacks(execute=True):
        services.policy_update(policy=policy, actor=olivia, reason="tighter live drawdown", max_live_drawdown=0.1)
    [(groups, message)] = [(g, m) for g, m in published if m["type"] == "graduation.policy"]
    assert "topic-graduation-policies" in groups and message["data"]["max_live_drawdown"] == 0.1
