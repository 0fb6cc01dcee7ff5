from django.urls import path

from apps.accounts import views as account_views
from apps.alerts import views as alert_views
from apps.backtests import views as backtest_views
from apps.graduation import views as graduation_views
from apps.marketdata import views as marketdata_views
from apps.ops import views as ops_views
from apps.risk import views as risk_views
from apps.strategies import views as strategy_views
from apps.trading import views as trading_views
from apps.training import views as training_views

from . import views

app_name = "dashboard"
urlpatterns = [
    path("", views.home, name="home"),
    path("login/", account_views.LoginView.as_view(), name="login"),
    path("logout/", account_views.LogoutView.as_view(), name="logout"),
    path("audit/", views.audit, name="audit"),
    path("health/", views.health_page, name="health"),
    path("alerts/", alert_views.centre, name="alerts"),
    path("alerts/channels/", alert_views.channels, name="alert-channels"),
    path("operations/backups/", ops_views.backups, name="backups"),
    path("exports/", ops_views.exports, name="exports"),
    path("market-data/", marketdata_views.page, name="marketdata"),
    path("strategies/", strategy_views.index, name="strategies"),
    path("backtests/", backtest_views.index, name="backtests"),
    path("backtests/compare/", backtest_views.compare, name="backtests-compare"),
    path("backtests/<int:pk>/", backtest_views.detail, name="backtest-detail"),
    path("risk/", risk_views.page, name="risk"),
    path("training/", training_views.index, name="training"),
    path("training/<int:pk>/", training_views.detail, name="training-detail"),
    path("graduation/", graduation_views.board, name="graduation"),
    path("graduation/configs/<int:pk>/", graduation_views.config_lineage, name="graduation-config"),
    path("trading/", trading_views.overview, name="trading"),
    path("trading/deployments/<int:pk>/", trading_views.deployment_page, name="trading-deployment"),
    path("trading/accounts/<int:pk>/", trading_views.account_page, name="trading-account"),
]
