"""The walls between packages, checked on the source with `ast`.

1. The pure cores (`orchestrator/routing/scoring.py`, `orchestrator/routing/regions.py` and every
   module of `orchestrator/resilience/`) import no sqlalchemy, httpx, fastapi or starlette, and no
   `orchestrator.` module other than the pure modules themselves and `orchestrator.providers.base`
   (for its enum types).
2. `sandbox_gateways/` never imports `orchestrator`.
3. `orchestrator/` imports `sandbox_gateways` only from the CLI (`orchestrator/cli.py`), the demo
   (`orchestrator/demo*`) and the gauntlet (`orchestrator/gauntlet*`), which start the sandbox.

Imports anywhere in a module count, including inside functions and `if TYPE_CHECKING:` blocks,
and so do `importlib.import_module("...")` / `__import__("...")` calls with a literal name.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN_IN_PURE = ("sqlalchemy", "httpx", "fastapi", "starlette")
ALLOWED_ORCHESTRATOR_IN_PURE = (
    "orchestrator.routing.scoring",
    "orchestrator.routing.regions",
    "orchestrator.providers.base",
)
ALLOWED_PREFIXES_IN_PURE = ("orchestrator.resilience",)
SANDBOX_STARTERS = ("cli.py", "demo", "gauntlet")  # under orchestrator/: cli.py, demo*, gauntlet*


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """Every module a source imports, absolute, with its line number. For `from X import n` both X
    and X.n are listed (n may be a submodule)."""
    package = module if is_package else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            found.extend((node.lineno, f"{target}.{alias.name}") for alias in node.names if alias.name != "*")
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            arg = node.args[0]
            if name in ("import_module", "__import__") and isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.append((node.lineno, arg.value))
    return found


def _is_or_under(name: str, root: str) -> bool:
    return name == root or name.startswith(root + ".")


def pure_violation(name: str) -> str | None:
    top = name.split(".")[0]
    if top in FORBIDDEN_IN_PURE:
        return f"imports {name}"
    if top != "orchestrator":
        return None
    if any(_is_or_under(name, allowed) for allowed in ALLOWED_ORCHESTRATOR_IN_PURE + ALLOWED_PREFIXES_IN_PURE):
        return None
    if name in ("orchestrator", "orchestrator.routing", "orchestrator.providers"):
        return None  # a package on the way to an allowed module; `from X import n` lists X.n too
    return f"imports {name}, a feature module"


def pure_modules() -> list[Path]:
    paths = [ROOT / "orchestrator/routing/scoring.py", ROOT / "orchestrator/routing/regions.py"]
    paths += sorted((ROOT / "orchestrator/resilience").glob("*.py"))
    return [p for p in paths if p.exists()]


def sources(folder: str) -> list[Path]:
    return sorted(p for p in (ROOT / folder).rglob("*.py") if ".venv" not in p.parts)


def imports_of(path: Path) -> list[tuple[int, str]]:
    return imported_modules(path.read_text(encoding="utf-8"), module_name(path), path.name == "__init__.py")


def may_start_the_sandbox(path: Path) -> bool:
    first = path.relative_to(ROOT / "orchestrator").parts[0]
    return first == "cli.py" or first.startswith(("demo", "gauntlet"))


# --- the walls ------------------------------------------------------------------------------------


def test_pure_modules_exist():
    names = {p.relative_to(ROOT).as_posix() for p in pure_modules()}
    assert {"orchestrator/routing/scoring.py", "orchestrator/routing/regions.py"} <= names


def test_pure_cores_import_no_io_and_no_feature_modules():
    violations = [
        f"{path.relative_to(ROOT)}:{line}: {why}"
        for path in pure_modules()
        for line, name in imports_of(path)
        if (why := pure_violation(name))
    ]
    assert not violations, "pure modules must stay pure:\n" + "\n".join(violations)


def test_sandbox_gateways_never_import_the_orchestrator():
    violations = [
        f"{path.relative_to(ROOT)}:{line}: imports {name}"
        for path in sources("sandbox_gateways")
        for line, name in imports_of(path)
        if _is_or_under(name, "orchestrator")
    ]
    assert not violations, "sandbox gateways talk to the orchestrator over HTTP only:\n" + "\n".join(violations)


def test_orchestrator_reaches_the_sandbox_only_to_start_it():
    violations = [
        f"{path.relative_to(ROOT)}:{line}: imports {name}"
        for path in sources("orchestrator")
        if not may_start_the_sandbox(path)
        for line, name in imports_of(path)
        if _is_or_under(name, "sandbox_gateways")
    ]
    assert not violations, "only the CLI, demo and gauntlet may import sandbox_gateways:\n" + "\n".join(violations)


# --- the checker itself can fail -----------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "import sqlalchemy",
        "import httpx as h",
        "from fastapi import Depends",
        "from starlette.requests import Request",
        "from sqlalchemy.ext.asyncio import AsyncSession",
        "def f():\n    import httpx",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from orchestrator.payments import service",
        "from orchestrator.payments.models import Payment",
        "import orchestrator.kit.db",
        "from orchestrator import config",
        "from orchestrator.routing import snapshot_cache",
        "from ..payments import service",
        "from .. import config",
        "import importlib\nimportlib.import_module('orchestrator.kit.db')",
        "__import__('httpx')",
    ],
)
def test_checker_catches_impure_imports(source):
    names = [n for _, n in imported_modules(source, "orchestrator.routing.scoring")]
    assert any(pure_violation(n) for n in names), names


@pytest.mark.parametrize(
    "source",
    [
        "import math, random",
        "from orchestrator.providers.base import ComponentStatus",
        "from orchestrator.routing.regions import region_for_country",
        "from orchestrator.routing import regions",
        "from .regions import region_for_country",
        "from orchestrator.resilience.breaker import Breaker",
        "from ..resilience import backoff",
    ],
)
def test_checker_allows_pure_imports(source):
    names = [n for _, n in imported_modules(source, "orchestrator.routing.scoring")]
    assert not [n for n in names if pure_violation(n)], names


def test_relative_imports_resolve_against_the_package():
    def names(source, module, is_package=False):
        return [n for _, n in imported_modules(source, module, is_package)]

    assert "orchestrator.resilience.backoff" in names("from . import backoff", "orchestrator.resilience", True)
    assert "orchestrator.resilience.backoff" in names("from . import backoff", "orchestrator.resilience.breaker")
    in_app = names("from .common import x", "sandbox_gateways.stripe.app")
    assert "sandbox_gateways.stripe.common" in in_app and "sandbox_gateways.common" not in in_app
    assert "sandbox_gateways.common" in names("from ..common import x", "sandbox_gateways.stripe.app")


def test_sandbox_starters_are_recognised():
    orch = ROOT / "orchestrator"
    assert may_start_the_sandbox(orch / "cli.py")
    assert may_start_the_sandbox(orch / "demo" / "run.py")
    assert may_start_the_sandbox(orch / "demo.py")
    assert may_start_the_sandbox(orch / "gauntlet" / "runner.py")
    assert not may_start_the_sandbox(orch / "payments" / "service.py")
    assert not may_start_the_sandbox(orch / "app.py")
