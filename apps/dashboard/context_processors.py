from django.conf import settings

# The dashboard's pages. A page not built yet is listed greyed out and says so, rather than
# leading to an empty screen.
NAV = [
    ("dashboard:home", "Overview"),
    ("dashboard:marketdata", "Market data"),
    ("dashboard:strategies", "Strategies"),
    ("dashboard:backtests", "Backtests"),
    ("dashboard:training", "Training"),
    ("dashboard:graduation", "Graduation"),
    ("dashboard:trading", "Trading"),
    ("dashboard:risk", "Risk"),
    ("dashboard:alerts", "Alerts"),
    ("dashboard:audit", "Audit trail"),
    ("dashboard:exports", "Exports and tax"),
    ("dashboard:health", "System health"),
    ("dashboard:backups", "Backups"),
]


def platform(request):
    from django.urls import NoReverseMatch, reverse

    items = []
    for name, label in NAV:
        try:
            url = reverse(name)
        except NoReverseMatch:
            url = None
        items.append({"label": label, "url": url, "active": bool(url) and request.path == url})
    return {
        "nav_items": items,
        "dev_secret_key": settings.USING_DEV_SECRET_KEY,
        "debug": settings.DEBUG,
        "embedded_mode": settings.EMBEDDED,
    }
