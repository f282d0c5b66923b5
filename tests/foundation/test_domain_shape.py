"""Every domain has the same shape, and the OpenAPI vocabulary is a leaf (issue 15 item 5).

A domain package (``server/<domain>/``) holds ``models``, ``service``, ``routes`` (its
``setup_routes``, mounted by ``server/routes.py``), ``openapi_spec`` (its endpoints, gathered by
``server/openapi/document.py``) and its handlers in ``views`` or ``api``. Someone looking for a
behaviour then finds it from the file name in any domain. ``server/openapi/spec.py`` (the vocabulary
every domain's spec imports) imports nothing from ``server``, so the aggregator can import every
domain's spec without an import circle and without imports inside functions to break one.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_import_boundaries import DOMAINS, ROOT, imported_modules, within

SERVER = ROOT / "server"
SHAPE = frozenset({"models", "service", "routes", "openapi_spec"})
HANDLERS = frozenset({"views", "api"})
# Packages under server/ that mount URLs but are not domains, and why.
NOT_DOMAINS = {
    "ops": "operations (metrics, backups): no JSON API of its own to document",
}


def modules_of(package: Path) -> frozenset[str]:
    return frozenset(p.stem for p in package.glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("domain", DOMAINS)
def test_each_domain_has_the_same_modules(domain: str) -> None:
    modules = modules_of(SERVER / domain)
    assert SHAPE <= modules, f"server/{domain} lacks {sorted(SHAPE - modules)}"
    assert modules & HANDLERS, f"server/{domain} has neither views.py nor api.py"


def test_every_package_that_mounts_urls_is_a_domain() -> None:
    """A new package with a ``routes.py`` takes the domain shape (or says here why not)."""
    mounting = {p.parent.name for p in SERVER.glob("*/routes.py")}
    assert mounting - set(NOT_DOMAINS) == set(DOMAINS)


def _imports(path: Path) -> set[str]:
    module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    return {name for _, name in imported_modules(path.read_text(), module, False)}


def test_server_routes_mounts_every_domain() -> None:
    imported = _imports(SERVER / "routes.py")
    missing = [d for d in DOMAINS if f"server.{d}.routes" not in imported]
    assert not missing, f"server/routes.py does not mount {missing}"
    assert "server.openapi.document" in imported  # openapi.json is mounted there too


def test_the_document_gathers_every_domain_spec() -> None:
    imported = _imports(SERVER / "openapi" / "document.py")
    missing = [d for d in DOMAINS if f"server.{d}.openapi_spec" not in imported]
    assert not missing, f"server/openapi/document.py leaves out {missing}"


def test_the_openapi_vocabulary_imports_no_domain() -> None:
    names = _imports(SERVER / "openapi" / "spec.py")
    assert not [n for n in names if within(n, "server")]


def test_the_openapi_package_imports_only_at_module_level() -> None:
    """An import inside a function is how the old circle was broken; none is needed now."""
    paths = sorted((SERVER / "openapi").glob("*.py"))
    assert paths
    late = [
        f"{path.name}:{node.lineno}"
        for path in paths
        for function in ast.walk(ast.parse(path.read_text()))
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
        for node in ast.walk(function)
        if isinstance(node, ast.Import | ast.ImportFrom)
    ]
    assert late == []


def test_loading_the_vocabulary_loads_nothing_else_of_the_server() -> None:
    """At run time too: neither ``server/__init__`` nor ``server/openapi/__init__`` pulls in the
    aggregator or a domain."""
    code = "import sys, server.openapi.spec; print(sorted(m for m in sys.modules if m[:7] == 'server.'))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['server.openapi', 'server.openapi.spec']"
