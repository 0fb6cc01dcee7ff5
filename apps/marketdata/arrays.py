"""CandleArrays: candles as numpy arrays, the shape backtests, training and trading consume."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COLUMNS = ("time", "open", "high", "low", "close", "volume")


@dataclass(frozen=True, eq=False)
class CandleArrays:
    """Equal-length arrays: `time` int64 epoch ms of each bar's OPEN (UTC, strictly increasing
    when read from the store), `open`/`high`/`low`/`close`/`volume` float64."""

    time: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    timeframe: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "time", np.ascontiguousarray(self.time, dtype=np.int64))
        for name in COLUMNS[1:]:
            object.__setattr__(self, name, np.ascontiguousarray(getattr(self, name), dtype=np.float64))
        n = len(self.time)
        for name in COLUMNS[1:]:
            if getattr(self, name).shape != (n,):
                raise ValueError(f"CandleArrays.{name} has shape {getattr(self, name).shape}, expected ({n},)")

    def __len__(self) -> int:
        return len(self.time)

    @classmethod
    def empty(cls, timeframe: str | None = None) -> CandleArrays:
        return cls(np.empty(0, np.int64), *(np.empty(0) for _ in range(5)), timeframe=timeframe)

    @classmethod
    def from_matrix(cls, matrix: np.ndarray, timeframe: str | None = None) -> CandleArrays:
        """From an (n, 6) float array of [time, open, high, low, close, volume] rows."""
        m = np.asarray(matrix, dtype=np.float64).reshape(-1, 6)
        return cls(m[:, 0].astype(np.int64), m[:, 1], m[:, 2], m[:, 3], m[:, 4], m[:, 5], timeframe=timeframe)

    def take(self, index) -> CandleArrays:
        """Rows selected by a boolean mask, index array or slice."""
        return CandleArrays(*(getattr(self, c)[index] for c in COLUMNS), timeframe=self.timeframe)

    def to_frame(self):
        """A pandas DataFrame: columns time (ms), open, high, low, close, volume; index the open
        time as a UTC DatetimeIndex named "open_time"."""
        import pandas as pd  # heavy, and only some callers want frames

        index = pd.DatetimeIndex(pd.to_datetime(self.time, unit="ms", utc=True), name="open_time")
        return pd.DataFrame({c: getattr(self, c) for c in COLUMNS}, index=index)
