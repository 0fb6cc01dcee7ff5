"""The layout's dependency rules (DESIGN.md): the quant core is Django-free; dependencies point
down (apps → tradepulse.core → quant), never up."""
from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _imports(package: str) -> dict[str, set[str]]:
    """Module path → every module name it imports (absolute, first two dotted parts)."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / package.replace(".", "/")).rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
        found[str(path.relative_to(ROOT))] = names
    return found


def _offenders(package: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(f"{path} imports {name}" for path, names in _imports(package).items() for name in names
                  if any(name == f or name.startswith(f + ".") for f in forbidden))


def test_quant_core_imports_neither_django_nor_the_platform():
    assert _offenders("quant", ("django", "rest_framework", "channels", "celery", "apps", "tradepulse")) == []


def test_tradepulse_core_imports_no_app():
    assert _offenders("tradepulse.core", ("apps",)) == []


def test_marketdata_does_not_import_the_strategy_library():
    assert _offenders("apps.marketdata", ("quant.strategies", "apps.strategies", "apps.backtests")) == []
