"""Portfolio snapshots: a deployment's equity at one tick, from its capital and its fills."""
from __future__ import annotations

from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from django.db.models import DecimalField, ExpressionWrapper, F, Q, Sum

from tradepulse.core.events import publish_for

from ..models import Deployment, Fill, OrderSide, PortfolioSnapshot, Position


def deployment_cash(deployment: Deployment) -> Decimal:
    """Capital, minus what buys cost, plus what sells brought, net of quote-currency fees (one
    aggregate query, however many fills)."""
    quote = deployment.config.market.quote
    value = ExpressionWrapper(F("amount") * F("price"), output_field=DecimalField(max_digits=40, decimal_places=20))
    sums = Fill.objects.filter(order__deployment=deployment).aggregate(
        bought=Sum(value, filter=Q(order__side=OrderSide.BUY)), sold=Sum(value, filter=Q(order__side=OrderSide.SELL)),
        fees=Sum("fee", filter=Q(fee_currency=quote)))
    return deployment.capital - (sums["bought"] or Decimal(0)) + (sums["sold"] or Decimal(0)) - (sums["fees"] or
                                                                                               Decimal(0))


@transaction.atomic
def portfolio_snapshot_take(*, deployment: Deployment, prices: dict[str, Decimal], time=None) -> PortfolioSnapshot:
    """Mark the deployment's positions at `prices` ({symbol: last price}, quote currency), update
    their unrealised PnL, store and publish a snapshot (equity = cash + positions at those prices).
    A position whose symbol has no price keeps its last mark."""
    positions_value = Decimal(0)
    for position in Position.objects.select_for_update().filter(deployment=deployment):
        price = prices.get(position.symbol)
        if price is not None:
            position.mark_price = Decimal(price)
            position.unrealised_pnl = ((position.mark_price - position.entry_price) * position.amount
                                       if position.entry_price is not None else Decimal(0))
            position.save(update_fields=["mark_price", "unrealised_pnl", "updated_at"])
        positions_value += position.amount * (position.mark_price or Decimal(0))
    cash = deployment_cash(deployment)
    snapshot = PortfolioSnapshot.objects.create(deployment=deployment, account_id=deployment.account_id,
                                                time=time or timezone.now(), cash=cash,
                                                positions_value=positions_value, equity=cash + positions_value)
    publish_for(deployment, "trading.portfolio.tick", {
        "id": snapshot.pk, "deployment": deployment.pk, "account": deployment.account_id, "time": snapshot.time,
        "equity": snapshot.equity, "cash": snapshot.cash, "positions_value": snapshot.positions_value})
    return snapshot
