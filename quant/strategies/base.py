"""Building blocks of the strategy library: bars, parameters, signals, the Strategy base
class and the registry. Pure Python + numpy; no Django.

Conventions
-----------
* ``Bars.time`` is the bar's OPEN time in epoch milliseconds (UTC); a bar closes at the next
  open of its grid (``Bars.close_time``): ``time + timeframe_ms(timeframe)`` for fixed
  timeframes, the 1st of the next month for calendar months ("1M").
* A signal at index ``t`` is decided from information available at bar ``t``'s close and
  nothing later. Every library strategy is tested for this (no lookahead).
* Higher-timeframe data is built from the base bars with :meth:`Bars.resample` and brought
  back onto the base bars with :func:`align_to_base`, which only exposes a higher-timeframe
  bar once it has fully closed.
* Parameter definitions double as the optimiser's search space (:meth:`IntParam.suggest`).
"""

from __future__ import annotations

import inspect
import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping

import numpy as np

from quant.timeframes import (_WEEK_OFFSET_MS, CALENDAR_TIMEFRAMES, TIMEFRAMES, check_grid_timeframe, close_times,
                             is_calendar, timeframe_ms)

__all__ = [
    "TIMEFRAMES", "timeframe_ms", "ParameterError", "UnknownStrategy",
    "IntParam", "FloatParam", "CategoricalParam", "BoolParam", "Param",
    "Bars", "align_to_base", "Signals", "IndicatorCache", "Strategy",
    "register", "get_strategy", "all_strategies",
]

# --------------------------------------------------------------------------- errors

class ParameterError(ValueError):
    """A strategy parameter is missing, unknown, of the wrong type or out of range.

    The message always names the parameter, e.g. ``"fast: 0 is below the minimum 2"``.
    """


class UnknownStrategy(KeyError):
    """No strategy is registered under the requested key."""

    def __str__(self) -> str:  # KeyError would wrap the message in quotes
        return str(self.args[0]) if self.args else "unknown strategy"


# --------------------------------------------------------------------------- parameters

def _number(name: str, value: Any, kind: str) -> float:
    """Coerce ``value`` (number or numeric string, never bool) to float or raise ParameterError."""
    if isinstance(value, (bool, np.bool_)):
        raise ParameterError(f"{name}: expected {kind}, got {value!r}")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ParameterError(f"{name}: expected {kind}, got {value!r}") from None
    if not isinstance(value, (int, float, np.integer, np.floating)):
        raise ParameterError(f"{name}: expected {kind}, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ParameterError(f"{name}: expected a finite number, got {value!r}")
    return value


def _check_bounds(name: str, value, low, high) -> None:
    if value < low:
        raise ParameterError(f"{name}: {value} is below the minimum {low}")
    if value > high:
        raise ParameterError(f"{name}: {value} is above the maximum {high}")


@dataclass(frozen=True)
class IntParam:
    """Integer parameter in ``[low, high]``. ``step`` is the optimiser's grid; values set by
    hand need not be on it."""

    name: str
    default: int
    low: int
    high: int
    step: int = 1
    help: str = ""
    type: ClassVar[str] = "int"

    def __post_init__(self) -> None:
        if not (self.low <= self.default <= self.high) or self.step < 1:
            raise ValueError(f"IntParam {self.name}: need low <= default <= high and step >= 1")

    def validate(self, value: Any) -> int:
        """Return ``value`` as an int within bounds; integral floats and numeric strings are accepted."""
        number = _number(self.name, value, "an integer")
        if not number.is_integer():
            raise ParameterError(f"{self.name}: expected an integer, got {value!r}")
        result = int(number)
        _check_bounds(self.name, result, self.low, self.high)
        return result

    def suggest(self, trial) -> int:
        """Draw a value from an optuna-like ``trial`` (``trial.suggest_int``)."""
        return trial.suggest_int(self.name, self.low, self.high, step=self.step)

    def to_schema(self) -> dict:
        """JSON-able description: name, type, default, low, high, step, help."""
        return {"name": self.name, "type": self.type, "default": self.default, "low": self.low,
                "high": self.high, "step": self.step, "help": self.help}


@dataclass(frozen=True)
class FloatParam:
    """Real parameter in ``[low, high]``; optional search ``step`` or ``log`` scale (not both)."""

    name: str
    default: float
    low: float
    high: float
    step: float | None = None
    log: bool = False
    help: str = ""
    type: ClassVar[str] = "float"

    def __post_init__(self) -> None:
        if not (self.low <= self.default <= self.high):
            raise ValueError(f"FloatParam {self.name}: need low <= default <= high")
        if self.log and (self.low <= 0 or self.step is not None):
            raise ValueError(f"FloatParam {self.name}: log scale needs low > 0 and no step")
        if self.step is not None and self.step <= 0:
            raise ValueError(f"FloatParam {self.name}: step must be positive")

    def validate(self, value: Any) -> float:
        """Return ``value`` as a finite float within bounds (ints and numeric strings accepted)."""
        result = _number(self.name, value, "a number")
        _check_bounds(self.name, result, self.low, self.high)
        return result

    def suggest(self, trial) -> float:
        """Draw a value from an optuna-like ``trial`` (``trial.suggest_float``)."""
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)

    def to_schema(self) -> dict:
        """JSON-able description: name, type, default, low, high, step, log, help."""
        return {"name": self.name, "type": self.type, "default": self.default, "low": self.low,
                "high": self.high, "step": self.step, "log": self.log, "help": self.help}


@dataclass(frozen=True)
class CategoricalParam:
    """One of a fixed tuple of JSON-able ``choices`` (strings, numbers or bools)."""

    name: str
    default: Any
    choices: tuple
    help: str = ""
    type: ClassVar[str] = "categorical"

    def __post_init__(self) -> None:
        object.__setattr__(self, "choices", tuple(self.choices))
        if not self.choices or self.default not in self.choices:
            raise ValueError(f"CategoricalParam {self.name}: default must be one of the choices")

    def validate(self, value: Any) -> Any:
        """Return ``value`` if it is one of the choices (compared with ``==``)."""
        for choice in self.choices:
            if isinstance(value, bool) != isinstance(choice, bool):
                continue  # True == 1 in Python; a bool must not select a number or vice versa
            if value == choice:
                return choice
        listed = ", ".join(repr(c) for c in self.choices)
        raise ParameterError(f"{self.name}: {value!r} is not one of {listed}")

    def suggest(self, trial) -> Any:
        """Draw a value from an optuna-like ``trial`` (``trial.suggest_categorical``)."""
        return trial.suggest_categorical(self.name, list(self.choices))

    def to_schema(self) -> dict:
        """JSON-able description: name, type, default, choices, help."""
        return {"name": self.name, "type": self.type, "default": self.default,
                "choices": list(self.choices), "help": self.help}


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


@dataclass(frozen=True)
class BoolParam:
    """On/off switch. Accepts bools, 0/1 and the strings true/false/yes/no/on/off/1/0."""

    name: str
    default: bool
    help: str = ""
    type: ClassVar[str] = "bool"

    def validate(self, value: Any) -> bool:
        """Return ``value`` as a bool or raise ParameterError."""
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        if isinstance(value, (int, np.integer)) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ParameterError(f"{self.name}: expected true or false, got {value!r}")

    def suggest(self, trial) -> bool:
        """Draw a value from an optuna-like ``trial`` (``suggest_categorical`` over False/True)."""
        return trial.suggest_categorical(self.name, [False, True])

    def to_schema(self) -> dict:
        """JSON-able description: name, type, default, help."""
        return {"name": self.name, "type": self.type, "default": self.default, "help": self.help}


Param = IntParam | FloatParam | CategoricalParam | BoolParam


# --------------------------------------------------------------------------- bars

def _bucket_start(time: np.ndarray, timeframe: str) -> np.ndarray:
    """Open time of the ``timeframe`` bar each timestamp falls in (weeks start on Monday,
    months on the 1st)."""
    if is_calendar(timeframe):
        months = CALENDAR_TIMEFRAMES[timeframe]
        index = np.asarray(time, dtype=np.int64).astype("datetime64[ms]").astype("datetime64[M]").astype(np.int64)
        return (index // months * months).astype("datetime64[M]").astype("datetime64[ms]").astype(np.int64)
    period_ms = TIMEFRAMES[timeframe]
    offset = _WEEK_OFFSET_MS if period_ms == TIMEFRAMES["1w"] else 0
    return (time - offset) // period_ms * period_ms + offset


@dataclass(frozen=True, eq=False)
class Bars:
    """OHLCV candles as contiguous numpy arrays of equal length.

    ``time`` is int64 epoch ms of each bar's open (UTC), strictly increasing; prices and
    volume are float64. ``timeframe`` is one of :data:`TIMEFRAMES` or a calendar timeframe
    ("1M": months have no fixed length, so ``bar_ms`` is None for them). Arrays are coerced (and
    copied only when needed) on construction. Slicing with ``bars[a:b]`` returns a Bars view.
    """

    time: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    timeframe: str

    def __post_init__(self) -> None:
        check_grid_timeframe(self.timeframe)
        object.__setattr__(self, "time", np.ascontiguousarray(self.time, dtype=np.int64))
        for name in ("open", "high", "low", "close", "volume"):
            object.__setattr__(self, name, np.ascontiguousarray(getattr(self, name), dtype=np.float64))
        n = len(self.time)
        for name in ("open", "high", "low", "close", "volume"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"Bars.{name} has shape {getattr(self, name).shape}, expected ({n},)")
        if n > 1 and not np.all(self.time[1:] > self.time[:-1]):
            raise ValueError("Bars.time must be strictly increasing")

    def __len__(self) -> int:
        return len(self.time)

    def __getitem__(self, index: slice) -> "Bars":
        if not isinstance(index, slice) or index.step not in (None, 1):
            raise TypeError("Bars can only be sliced with a contiguous slice, e.g. bars[100:200]")
        return Bars(self.time[index], self.open[index], self.high[index], self.low[index],
                    self.close[index], self.volume[index], self.timeframe)

    @property
    def bar_ms(self) -> int | None:
        """Length of one bar in milliseconds; None for calendar months (28 to 31 days)."""
        return None if is_calendar(self.timeframe) else timeframe_ms(self.timeframe)

    @property
    def close_time(self) -> np.ndarray:
        """Epoch ms at which each bar closes (the next open of its grid)."""
        return close_times(self.time, self.timeframe)

    @property
    def end_ms(self) -> int | None:
        """Close time of the last bar (None for no bars): the end of the half-open period."""
        return int(close_times(self.time[-1:], self.timeframe)[0]) if len(self.time) else None

    def resample(self, timeframe: str) -> "Bars":
        """Aggregate into ``timeframe`` bars (open=first, high=max, low=min, close=last, volume=sum).

        Buckets are aligned to UTC (days at midnight, weeks on Monday, months on the 1st). The
        first and last buckets may be incomplete (data starting or ending mid-bucket, or gaps);
        use :func:`align_to_base` to read them without lookahead. ``timeframe`` must be a whole
        multiple of this timeframe (a month is one of every fixed timeframe up to a day), else
        ``ValueError``.
        """
        check_grid_timeframe(timeframe)
        if timeframe == self.timeframe:
            return self
        base = self.bar_ms
        if is_calendar(timeframe):
            fits = base is not None and 86_400_000 % base == 0
        else:
            step = timeframe_ms(timeframe)
            fits = base is not None and step > base and step % base == 0
        if not fits:
            raise ValueError(f"cannot resample {self.timeframe} bars to {timeframe}: not a whole multiple")
        if len(self) == 0:
            return Bars(self.time, self.open, self.high, self.low, self.close, self.volume, timeframe)
        bucket = _bucket_start(self.time, timeframe)
        starts = np.flatnonzero(np.concatenate(([True], bucket[1:] != bucket[:-1])))
        ends = np.concatenate((starts[1:], [len(self)])) - 1
        return Bars(
            time=bucket[starts],
            open=self.open[starts],
            high=np.maximum.reduceat(self.high, starts),
            low=np.minimum.reduceat(self.low, starts),
            close=self.close[ends],
            volume=np.add.reduceat(self.volume, starts),
            timeframe=timeframe,
        )


def align_to_base(base: Bars, htf: Bars, values) -> np.ndarray:
    """Spread one value per higher-timeframe bar onto the base bars, without lookahead.

    Base bar ``i`` gets the value of the last ``htf`` bar whose close time is <= base bar
    ``i``'s close time, i.e. the last higher-timeframe bar that had fully closed when bar
    ``i`` closed. Before the first such bar the result is NaN. Returns float64 of
    ``len(base)``; ``values`` must have ``len(htf)`` entries.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (len(htf),):
        raise ValueError(f"values has shape {values.shape}, expected ({len(htf)},)")
    idx = np.searchsorted(htf.close_time, base.close_time, side="right") - 1
    out = np.full(len(base), np.nan)
    visible = idx >= 0
    out[visible] = values[idx[visible]]
    return out


# --------------------------------------------------------------------------- signals

def _as_signal(name: str, values) -> np.ndarray:
    """Coerce to a bool array; NaN and 0 are False so a signal never fires on NaN."""
    arr = np.asarray(values)
    if arr.dtype == np.bool_:
        return np.ascontiguousarray(arr)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"Signals.{name} must be boolean or numeric, got {arr.dtype}")
    return np.ascontiguousarray((arr == arr) & (arr != 0))


@dataclass
class Signals:
    """What a strategy wants, bar by bar, decided at each bar's close.

    ``entries_long`` / ``exits_long`` (and optionally ``entries_short`` / ``exits_short``)
    are bool arrays. ``stop_price`` / ``take_profit_price`` are optional float arrays of
    absolute price levels set on the entry signal bar (NaN = none; they override the
    engine's fractional stop/take-profit for that entry). ``info`` holds indicator arrays
    worth charting, keyed by a short label.
    """

    entries_long: np.ndarray
    exits_long: np.ndarray
    entries_short: np.ndarray | None = None
    exits_short: np.ndarray | None = None
    stop_price: np.ndarray | None = None
    take_profit_price: np.ndarray | None = None
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("entries_long", "exits_long", "entries_short", "exits_short"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, _as_signal(name, value))
        for name in ("stop_price", "take_profit_price"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, np.ascontiguousarray(value, dtype=np.float64))

    def __len__(self) -> int:
        return len(self.entries_long)

    def check(self, n: int) -> "Signals":
        """Raise ``ValueError`` unless every array has length ``n``; return self."""
        for name in ("entries_long", "exits_long", "entries_short", "exits_short",
                     "stop_price", "take_profit_price"):
            value = getattr(self, name)
            if value is not None and value.shape != (n,):
                raise ValueError(f"Signals.{name} has shape {value.shape}, expected ({n},)")
        return self


# --------------------------------------------------------------------------- indicator cache

class IndicatorCache:
    """Memo of indicator arrays for ONE Bars object, shared across parameter combinations.

    A sweep over 100 (fast, slow) pairs needs only the distinct SMA windows; strategies ask
    the cache with a key such as ``("sma", "close", 20)``. Bounded (least recently used
    entries are dropped) so a long optimisation does not grow memory without limit.
    Thread-safe enough for our use: a race computes an entry twice, never wrongly.
    """

    def __init__(self, bars: Bars, max_items: int = 128):
        self.bars = bars
        self.max_items = max_items
        self._items: OrderedDict = OrderedDict()

    def get(self, key, compute: Callable[[], Any]):
        """Return the cached value for ``key``, computing and storing it on a miss."""
        try:
            value = self._items[key]
            self._items.move_to_end(key)
            return value
        except KeyError:
            pass
        value = compute()
        self._items[key] = value
        while len(self._items) > self.max_items:
            self._items.popitem(last=False)
        return value


class _NoCache:
    """Stand-in used when the caller passes no cache: always computes."""

    bars = None

    @staticmethod
    def get(key, compute):
        return compute()


# --------------------------------------------------------------------------- strategy

class Strategy:
    """Base class of library strategies. Subclasses are stateless; everything is a classmethod.

    Subclasses set ``key``, ``name``, ``params`` (and ``timeframes`` / ``supports_short``),
    write the idea in the class docstring (it becomes ``description``), override
    ``compute`` (vectorised, on validated parameters) and, for cross-field rules, ``check``.
    Callers use ``signals`` which validates parameters and the output shape.
    """

    key: ClassVar[str] = ""
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    params: ClassVar[tuple] = ()
    timeframes: ClassVar[tuple[str, ...]] = ()
    supports_short: ClassVar[bool] = False
    # True when signals() sets stop_price on entries (risk sizing then needs no configured stop).
    provides_stops: ClassVar[bool] = False

    @classmethod
    def default_params(cls) -> dict:
        """Every parameter at its default."""
        return {p.name: p.default for p in cls.params}

    @classmethod
    def validate_params(cls, params: Mapping | None = None) -> dict:
        """Return a complete, coerced parameter dict: defaults filled in, unknown keys
        rejected (named in the message), each value validated, then ``check`` run.

        Raises ParameterError.
        """
        if params is None:
            params = {}
        if not isinstance(params, Mapping):
            raise ParameterError(f"parameters must be a mapping, got {type(params).__name__}")
        known = {p.name: p for p in cls.params}
        unknown = sorted(set(params) - set(known), key=str)
        if unknown:
            raise ParameterError(
                f"unknown parameter{'s' if len(unknown) > 1 else ''} for {cls.key}: "
                f"{', '.join(map(str, unknown))}; expected: {', '.join(known) or 'none'}")
        result = {name: p.validate(params[name]) if name in params else p.default
                  for name, p in known.items()}
        cls.check(result)
        return result

    @classmethod
    def check(cls, params: dict) -> None:
        """Cross-field rules on validated parameters; raise ParameterError. Default: none."""

    @classmethod
    def schema(cls) -> dict:
        """JSON-able description of the strategy and its parameters (for forms and the API)."""
        return {"key": cls.key, "name": cls.name, "description": cls.description,
                "params": [p.to_schema() for p in cls.params],
                "timeframes": list(cls.timeframes), "supports_short": cls.supports_short,
                "provides_stops": cls.provides_stops}

    @classmethod
    def warmup(cls, params: dict, timeframe: str) -> int:
        """Bars of ``timeframe`` history to read before a bar so that its signal is the one the
        whole history would give, whatever the data's alignment (the one rule is described in
        :mod:`quant.strategies.warmup`; callers use ``warmup.warmup_bars``).

        Indicators with a finite window then give exactly the full-history signal; recursive
        ones (EMA, Wilder's RSI/ATR) must also have forgotten their seed, to
        ``warmup.TOLERANCE``: use ``warmup.ema_settle_bars`` / ``warmup.wilder_settle_bars``.
        Default 0.
        """
        return 0

    @classmethod
    def signals(cls, data: Bars, params: Mapping | None = None, *, cache: IndicatorCache | None = None) -> Signals:
        """Validate ``params`` and return this strategy's :class:`Signals` for ``data``.

        ``cache`` (an :class:`IndicatorCache` built for this very ``data``) lets many calls
        share indicator arrays. Raises ParameterError for bad parameters.
        """
        validated = cls.validate_params(params)
        if cache is None:
            cache = _NoCache()
        elif cache.bars is not data:
            raise ValueError("IndicatorCache belongs to a different Bars object")
        return cls.compute(data, validated, cache).check(len(data))

    @classmethod
    def compute(cls, data: Bars, params: dict, cache) -> Signals:
        """Produce signals from validated ``params``; override in subclasses."""
        raise NotImplementedError


# --------------------------------------------------------------------------- registry

_REGISTRY: dict[str, type[Strategy]] = {}


def register(cls: type[Strategy]) -> type[Strategy]:
    """Class decorator adding a Strategy subclass to the registry under ``cls.key``.

    Fills ``name`` (from the key) and ``description`` (from the docstring) when unset,
    and checks that the defaults pass validation. A second class with the same key is an
    error.
    """
    if not (isinstance(cls, type) and issubclass(cls, Strategy)) or not cls.key:
        raise TypeError("register() needs a Strategy subclass with a non-empty key")
    existing = _REGISTRY.get(cls.key)
    if existing is not None and existing is not cls:
        raise ValueError(f"strategy key {cls.key!r} is already registered by {existing.__qualname__}")
    if not cls.name:
        cls.name = cls.key.replace("_", " ").capitalize()
    if not cls.description:
        cls.description = inspect.cleandoc(cls.__doc__ or "")
    cls.validate_params({})
    _REGISTRY[cls.key] = cls
    return cls


def get_strategy(key: str) -> type[Strategy]:
    """The registered Strategy class for ``key``; UnknownStrategy lists the known keys."""
    try:
        return _REGISTRY[key]
    except (KeyError, TypeError):
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise UnknownStrategy(f"unknown strategy {key!r}; known strategies: {known}") from None


def all_strategies() -> list[type[Strategy]]:
    """All registered Strategy classes sorted by key."""
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]
