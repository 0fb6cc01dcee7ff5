"""The backups page: an operator backs up now and watches the row go from queued to succeeded,
live; a trader is refused. Screenshots at 1440x900 and 390x844."""
from __future__ import annotations

from playwright.sync_api import expect

from apps.ops.models import Backup, BackupState
from tests.browser.test_alerts import _shoot
from tests.conftest import make_user


def test_back_up_now_from_the_page(login, page, live_url, settings, tmp_path, alice):
    settings.TRADEPULSE_BACKUP_DIR = str(tmp_path)
    olivia = make_user("olivia", "Operator", is_staff=True)
    login(olivia)
    page.goto(f"{live_url}/operations/backups/")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    expect(page.locator("#backups-table tbody")).to_contain_text("No backups yet")
    page.click("#backup-now")
    row = page.locator("#backups-table tbody tr").first
    expect(row).to_contain_text("succeeded", timeout=30000)
    expect(row).to_contain_text("olivia")
    backup = Backup.objects.get()
    assert backup.state == BackupState.SUCCEEDED and (tmp_path / f"{backup.name}.json").exists()
    expect(row).to_contain_text(backup.name)
    _shoot(page, "backups")

    page.context.clear_cookies()
    login(alice)
    response = page.goto(f"{live_url}/operations/backups/")
    assert response.status == 403


def test_exports_and_the_tax_report_page(login, page, live_url, alice):
    from datetime import UTC, datetime

    from tests.ops.test_reports import _fill
    from tests.owned_factories import deployment as make_deployment

    dep = make_deployment(alice)
    _fill(dep, 1, "buy", "1", "100", datetime(2025, 1, 10, tzinfo=UTC), fee="1")
    _fill(dep, 2, "buy", "1", "200", datetime(2025, 2, 10, tzinfo=UTC))
    _fill(dep, 3, "sell", "1.5", "300", datetime(2025, 3, 10, tzinfo=UTC), fee="3")
    login(alice)
    page.goto(f"{live_url}/exports/")
    page.fill("#tax-form input[name=year]", "2024")
    page.select_option("#tax-form select[name=first_month]", "4")
    page.fill("#tax-form input[name=timezone]", "Europe/London")
    page.click("#tax-form button.primary")
    expect(page.locator("#tax-table tbody tr")).to_have_count(2)
    expect(page.locator("#tax-period")).to_contain_text("2024-04-01 to 2025-04-01 (Europe/London)")
    expect(page.locator("#tax-totals")).to_contain_text("2 disposals")
    expect(page.locator("#tax-totals")).to_contain_text("gain 246")
    with page.expect_download() as download:
        page.click("#tax-csv")
    text = open(download.value.path()).read()
    assert text.splitlines()[0].startswith("sold,acquired,account,symbol,amount,cost,proceeds,gain")
    assert len(text.strip().splitlines()) == 3
    with page.expect_download() as download:
        page.click("#export-trades")
    assert len(open(download.value.path()).read().strip().splitlines()) == 4
    _shoot(page, "exports_tax")


def test_configuration_import_preview_and_apply(login, page, live_url, alice, bob, tmp_path):
    import json

    from apps.ops.configio import config_export
    from apps.strategies.models import StrategyConfig
    from tests.owned_factories import strategy_config

    strategy_config(alice)
    document = tmp_path / "config.json"
    document.write_text(json.dumps(config_export(user=alice)))
    login(bob)
    page.goto(f"{live_url}/exports/")
    page.set_input_files("#config-file", str(document))
    plan = page.locator("#config-plan tbody tr")
    expect(plan).to_have_count(1)
    expect(plan.first).to_contain_text("create")
    assert not StrategyConfig.objects.filter(owner=bob).exists()
    page.click("#config-apply")
    expect(page.locator(".toast", has_text="Imported: 1 created")).to_be_visible()
    assert StrategyConfig.objects.filter(owner=bob).count() == 1
    with page.expect_download() as download:
        page.click("#config-download")
    assert json.loads(open(download.value.path()).read())["user"] == "bob"
