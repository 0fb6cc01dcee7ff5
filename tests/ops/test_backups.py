"""Backups: a round trip with data through the commands, refusal of a newer schema or an altered
file (nothing touched), retention, the API (operators), the daily task."""
from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from apps.alerts.models import Alert, Channel
from apps.alerts.services import alert_raise, channel_create
from apps.audit.models import AuditEvent
from apps.ops import services
from apps.ops.models import Backup, BackupState
from apps.ops.tasks import backup_daily


@pytest.fixture(autouse=True)
def backup_dir(settings, tmp_path):
    settings.TRADEPULSE_BACKUP_DIR = str(tmp_path / "backups")
    return tmp_path / "backups"


def _json(*args) -> dict:
    out = StringIO()
    call_command(*args, "--json", stdout=out)
    return json.loads(out.getvalue())


@pytest.mark.django_db(transaction=True)
def test_backup_and_restore_round_trip_with_data(backup_dir):
    from tests.conftest import make_user

    alice = make_user("alice", "Trader")
    kept = alert_raise(severity="error", source="system", title="Before the backup", key="before")
    channel_create(owner=alice, name="mail", kind="email")
    taken = _json("backup")["backup"]
    assert taken["state"] == "succeeded" and taken["size_bytes"] > 0 and len(taken["sha256"]) == 64
    files = sorted(p.name for p in backup_dir.iterdir())
    assert files == sorted([f"{taken['name']}.json", f"{taken['name']}.{'dump' if taken['engine'] == 'postgresql' else 'sqlite3'}"])

    # life goes on: one alert removed, another raised, the channel renamed
    Alert.objects.filter(pk=kept.pk).delete()
    alert_raise(severity="warning", source="system", title="After the backup", key="after")
    Channel.objects.update(name="renamed")

    with pytest.raises(CommandError, match="pass --yes"):
        call_command("restore", taken["name"], "--reason", "drill")
    result = _json("restore", taken["name"], "--yes", "--reason", "restore drill")
    assert result["restored"] == taken["name"] and result["migrated"] == []
    assert list(Alert.objects.values_list("title", flat=True)) == ["Before the backup"]
    assert list(Channel.objects.values_list("name", flat=True)) == ["mail"]
    restored = Backup.objects.get(name=taken["name"])  # re-indexed from the files
    assert restored.state == BackupState.SUCCEEDED and restored.restored_at is not None
    event = AuditEvent.objects.get(action="ops.backup.restored")
    assert event.reason == "restore drill"


@pytest.mark.django_db(transaction=True)
def test_restore_refuses_a_backup_from_a_newer_schema_and_touches_nothing(backup_dir):
    taken = _json("backup")["backup"]
    manifest_path = backup_dir / f"{taken['name']}.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["migrations"].append("alerts.9999_from_the_future")
    manifest_path.write_text(json.dumps(manifest))
    alert_raise(severity="warning", source="system", title="Stored after", key="after")
    with pytest.raises(CommandError, match="newer schema than this code .*alerts.9999_from_the_future"):
        call_command("restore", taken["name"], "--yes", "--reason", "try")
    assert Alert.objects.filter(title="Stored after").exists()


@pytest.mark.django_db(transaction=True)
def test_restore_refuses_an_altered_file(backup_dir):
    taken = _json("backup")["backup"]
    data = next(p for p in backup_dir.iterdir() if not p.name.endswith(".json"))
    data.write_bytes(data.read_bytes() + b"tampered")
    with pytest.raises(CommandError, match="does not match its recorded checksum"):
        call_command("restore", "--latest", "--yes", "--reason", "try")


def test_retention_keeps_recent_and_the_newest_few_scheduled_backups(db, settings, backup_dir):
    settings.TRADEPULSE_BACKUP_KEEP_DAYS, settings.TRADEPULSE_BACKUP_KEEP_MIN = 7, 2
    now = timezone.now()
    made = {}
    for name, age_days, kind in [("s-new", 1, "scheduled"), ("s-10", 10, "scheduled"), ("s-20", 20, "scheduled"),
                                 ("s-30", 30, "scheduled"), ("m-40", 40, "manual")]:
        b = Backup.objects.create(name=name, kind=kind, state=BackupState.SUCCEEDED)
        Backup.objects.filter(pk=b.pk).update(created_at=now - timedelta(days=age_days))
        backup_dir.mkdir(exist_ok=True)
        (backup_dir / f"{name}.json").write_text("{}")
        made[name] = b
    assert sorted(services.backups_prune(now=now)) == ["s-20", "s-30"]
    assert sorted(Backup.objects.values_list("name", flat=True)) == ["m-40", "s-10", "s-new"]
    assert not (backup_dir / "s-20.json").exists() and (backup_dir / "m-40.json").exists()


def test_api_back_up_now_is_for_operators(api, alice, olivia, django_capture_on_commit_callbacks):
    assert api(alice).post("/api/v1/backups/", {}, format="json").status_code == 403
    assert api(alice).get("/api/v1/backups/").status_code == 403
    with django_capture_on_commit_callbacks(execute=True):
        response = api(olivia).post("/api/v1/backups/", {}, format="json")
    assert response.status_code == 202 and response.json()["state"] == "queued"
    backup = Backup.objects.get(pk=response.json()["id"])
    assert backup.state == BackupState.SUCCEEDED and backup.requested_by == olivia
    listed = api(olivia).get("/api/v1/backups/").json()["results"]
    assert [b["name"] for b in listed] == [backup.name] and listed[0]["size_bytes"] > 0


def test_the_daily_task_takes_a_scheduled_backup_and_applies_the_retention(db):
    result = backup_daily()
    assert result["state"] == "succeeded" and result["pruned"] == []
    assert Backup.objects.get().kind == "scheduled"
