from tests.alerts.receiver import receiver  # noqa: F401 - the local webhook receiver fixture
