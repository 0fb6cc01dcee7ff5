"""Provenance of a result: the code version of a strategy and the fingerprint of the bars.

Code version
------------
``code_version(key)`` is the SHA-256 of the source files that decide what a strategy's
backtest produces, so a stored run or config can be traced to the code behind its numbers:

* the module that defines the strategy class (e.g. ``quant/strategies/crossover.py``);
* every module inside ``quant`` that it imports, followed transitively through explicit
  imports (``base.py``, ``indicators.py``, ``quant/timeframes.py``, ``quant/_jit.py`` …);
* the engine package (``quant/engine``: the fill rules) and ``quant/metrics.py`` (the
  figures), with their own ``quant`` imports.

Not hashed: parent package ``__init__`` files that only re-export (``quant/strategies/__init__.py``
imports every strategy module, so following it would tie each strategy to all others), the
optimiser (``quant/optimisation``: it chooses parameters, but a config's trades are reproduced
by the strategy and the engine alone), third-party libraries (their versions are pinned in
``requirements/``). Two strategies defined in the same module share a code version.
Line endings are normalised so a checkout on another platform hashes the same.

Bars fingerprint
----------------
``bars_fingerprint(bars)``: SHA-256 of the open times and OHLCV arrays, to tell whether two
results were measured on the same candles.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
from functools import lru_cache
from pathlib import Path

import numpy as np

from .base import Bars, get_strategy

__all__ = ["ALWAYS_HASHED", "bars_fingerprint", "code_version", "code_version_files", "hash_files"]

QUANT_ROOT = Path(__file__).resolve().parent.parent
ROOT = QUANT_ROOT.parent
# What turns any strategy's signals into trades and figures.
ALWAYS_HASHED = ("quant.engine", "quant.metrics")


def bars_fingerprint(bars: Bars) -> str:
    """SHA-256 (hex) of the bars' open times and OHLCV values, in that order."""
    digest = hashlib.sha256()
    for array in (bars.time, bars.open, bars.high, bars.low, bars.close, bars.volume):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _module_file(name: str) -> Path | None:
    """The source file of module ``name`` inside ``quant`` (None for a name that is not a module)."""
    base = ROOT.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path.resolve()
    return None


def _package_of(name: str, path: Path) -> str:
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def _quant_imports(name: str, path: Path) -> set[str]:
    """Module names inside ``quant`` that ``path`` (module ``name``) imports explicitly."""
    package = _package_of(name, path)
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if node.module:  # `from . import indicators` reads the submodule, not the package
                found.add(module)
            # `from . import indicators` / `from quant.engine import core`: submodules by name.
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return {m for m in found if m == "quant" or m.startswith("quant.")}


def _closure(roots: list[str]) -> list[Path]:
    seen: dict[str, Path] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = _module_file(name)
        if path is None:  # a name imported from a module, not a module
            continue
        seen[name] = path
        todo.extend(_quant_imports(name, path) - set(seen))
    return sorted(set(seen.values()))


def _relative(path: Path) -> str:
    try:
        return path.relative_to(ROOT).as_posix()
    except ValueError:
        return path.as_posix()


def hash_files(paths: list[Path]) -> str:
    """SHA-256 over (relative path, source with normalised line endings) of each file, sorted by path."""
    digest = hashlib.sha256()
    for path in sorted(paths, key=_relative):
        digest.update(_relative(path).encode() + b"\n")
        digest.update(path.read_bytes().replace(b"\r\n", b"\n") + b"\0")
    return digest.hexdigest()


@lru_cache(maxsize=None)
def code_version_files(key: str) -> tuple[str, ...]:
    """The files (relative to the repository) that ``code_version(key)`` hashes.

    Raises UnknownStrategy for an unknown key. Cached per process: the code that runs is the
    code that was loaded.
    """
    cls = get_strategy(key)
    module = inspect.getmodule(cls)
    roots = [*ALWAYS_HASHED, module.__name__]
    paths = _closure(roots)
    own = Path(inspect.getfile(cls)).resolve()
    if own not in paths:  # a strategy defined outside quant still hashes its own module
        paths.append(own)
    return tuple(_relative(p) for p in sorted(paths, key=_relative))


@lru_cache(maxsize=None)
def code_version(key: str) -> str:
    """SHA-256 (hex, 64 characters) of the strategy's source and what it depends on (module docstring)."""
    return hash_files([ROOT / p if not Path(p).is_absolute() else Path(p) for p in code_version_files(key)])
