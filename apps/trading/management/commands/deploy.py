"""Deploy a strategy config to an exchange account with some capital.

    manage.py deploy --config 12 --account 3 --capital 2500 [--exit-policy keep|close] [--activate --reason TEXT] [--json]

Runs the same service as the API and the dashboard (deployment_create: refused, naming why, for
another user's config, a config needing shorts on a spot market, or capital above the account's
free balance). The deployment belongs to the config's owner and is created paused; `--activate`
starts it at the next closed bar (audited with `--reason`).
"""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.core.management.base import CommandError

from apps.strategies.models import StrategyConfig
from apps.trading import services
from apps.trading.models import ExchangeAccount
from tradepulse.core import context
from tradepulse.core.commands import TradePulseCommand


class Command(TradePulseCommand):
    help = __doc__

    def add_options(self, parser):
        parser.add_argument("--config", type=int, required=True, help="StrategyConfig id.")
        parser.add_argument("--account", type=int, required=True, help="ExchangeAccount id.")
        parser.add_argument("--capital", required=True, help="Capital in the market's quote currency, e.g. 2500.")
        parser.add_argument("--exit-policy", choices=["keep", "close"], default="keep",
                            help="What stopping does with open positions.")
        parser.add_argument("--name", default="")
        parser.add_argument("--activate", action="store_true", help="Start trading at the next closed bar.")
        parser.add_argument("--reason", default="deployed with the deploy command")

    def run(self, **o):
        try:
            capital = Decimal(o["capital"])
        except InvalidOperation:
            raise CommandError(f"--capital: {o['capital']!r} is not a number") from None
        config = StrategyConfig.objects.select_related("owner", "market__exchange").filter(pk=o["config"]).first()
        if config is None:
            raise CommandError(f"--config: no strategy config {o['config']}")
        account = ExchangeAccount.objects.filter(pk=o["account"]).first()
        if account is None:
            raise CommandError(f"--account: no exchange account {o['account']}")
        with context.acting(user_id=config.owner_id):
            deployment = services.deployment_create(owner=config.owner, config=config, account=account,
                                                    capital=capital, exit_policy=o["exit_policy"], name=o["name"],
                                                    reason=o["reason"])
            if o["activate"]:
                deployment = services.deployment_activate(deployment=deployment, reason=o["reason"])
        self.say(f"Deployment {deployment.pk} ({deployment.name}): {deployment.state} — {deployment.state_reason}")
        return {"id": deployment.pk, "name": deployment.name, "state": deployment.state,
                "state_reason": deployment.state_reason, "config": config.pk, "account": account.pk,
                "mode": account.mode, "capital": str(deployment.capital), "exit_policy": deployment.exit_policy,
                "symbol": config.market.symbol, "timeframe": config.timeframe}
