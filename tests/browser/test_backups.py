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
