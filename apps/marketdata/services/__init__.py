"""Every state change of market data (DESIGN.md: views, API, admin, tasks and commands call these).

- markets:   exchange_get_or_create, exchange_load_markets, market_get_or_load, market_get_or_create_for_import
- ingest:    candles_ingest (validate + upsert + coverage + issues), issue_resolve, coverage_rebuild
- downloads: download_start, download_run, download_cancel, download_retry, gaps_fill
- retention: retention_apply
- imports:   candles_import_csv
"""
from .downloads import download_cancel, download_retry, download_run, download_start, gaps_fill
from .imports import ImportReport, candles_import_csv
from .ingest import IngestResult, candles_ingest, coverage_rebuild, issue_resolve
from .markets import exchange_get_or_create, exchange_load_markets, market_get_or_create_for_import, market_get_or_load
from .retention import RetentionReport, retention_apply

__all__ = [
    "ImportReport", "IngestResult", "RetentionReport", "candles_import_csv", "candles_ingest", "coverage_rebuild",
    "download_cancel", "download_retry", "download_run", "download_start", "exchange_get_or_create",
    "exchange_load_markets", "gaps_fill", "issue_resolve", "market_get_or_create_for_import", "market_get_or_load",
    "retention_apply",
]
