"""Brokers: one interface (base.Broker), one implementation per kind of venue."""
from __future__ import annotations

from .base import Broker, BrokerError
from .ccxt import CcxtBroker
from .paper import PaperBroker


def broker_for(account) -> Broker:
    """The broker that executes for `account`: the paper broker (engine core's fill rules on
    stored candles) for paper accounts, ccxt for testnet/live accounts."""
    if account.mode == "paper":
        return PaperBroker(account)
    return CcxtBroker(account)
