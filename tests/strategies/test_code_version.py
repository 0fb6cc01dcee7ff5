"""Code version: the hash of a strategy's source and of the engine and metrics code it runs with."""
from __future__ import annotations

import re
import shutil

from quant.strategies.provenance import ROOT, code_version, code_version_files, hash_files


def test_code_version_hashes_the_strategy_module_and_what_it_depends_on():
    files = set(code_version_files("sma_cross"))
    assert {"quant/strategies/crossover.py", "quant/strategies/indicators.py", "quant/strategies/base.py",
            "quant/engine/core.py", "quant/engine/runner.py", "quant/engine/config.py", "quant/metrics.py",
            "quant/timeframes.py"} <= files
    # Other strategies' modules and the re-exporting package __init__ are not part of it.
    assert not files & {"quant/strategies/reversion.py", "quant/strategies/breakout.py",
                        "quant/strategies/__init__.py"}
    assert re.fullmatch(r"[0-9a-f]{64}", code_version("sma_cross"))
    assert code_version("sma_cross") == code_version("ema_cross")  # same module, same dependencies
    assert code_version("sma_cross") != code_version("rsi_reversion")


def test_any_change_to_a_hashed_file_changes_the_version(tmp_path):
    copies = []
    for name in code_version_files("rsi_reversion"):
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, target)
        copies.append(target)
    before = hash_files(copies)
    core = tmp_path / "quant/engine/core.py"
    core.write_text(core.read_text() + "\n# a comment is a change too\n")
    changed = hash_files(copies)
    assert changed != before
    core.write_bytes(core.read_bytes().replace(b"\n", b"\r\n"))  # but line endings are not
    assert hash_files(copies) == changed


def test_strategy_library_api_shows_the_current_code_version(api, alice):
    strategies = {s["key"]: s for s in api(alice).get("/api/v1/strategies/").json()}
    assert strategies["macd"]["code_version"] == code_version("macd")
    assert "quant/strategies/crossover.py" in strategies["macd"]["code_files"]
