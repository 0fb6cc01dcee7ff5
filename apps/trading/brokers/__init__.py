"""Brokers: one interface (base.Broker), one implementation per kind of venue."""
from __future__ import annotations

from .base import Broker, BrokerError
from .ccxt import CcxtBroker


def broker_for(account) -> Broker:
    """The broker that executes for `account`: ccxt for testnet/live accounts."""
    if account.mode == "paper":
        raise BrokerError("not_supported", "Paper accounts trade through the engine core's paper broker, which is "
                                           "not connected yet.")
    return CcxtBroker(account)
