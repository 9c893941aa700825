"""Where things live: ``benchmarks/`` is the users' suite only, the team's check scripts are in ``tools/``,
and ``tools/`` imports nothing from ``tests/`` (tests may import tools, never the reverse)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST_MODULES = {path.stem for path in (ROOT / "tests").glob("*.py")}


def _imported_names(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


def test_benchmarks_holds_the_users_suite_only():
    files = sorted(path.name for path in (ROOT / "benchmarks").glob("*.py"))
    assert files and all(name.startswith("test_") or name == "conftest.py" for name in files), files


def test_tools_import_nothing_from_tests():
    for path in sorted((ROOT / "tools").glob("*.py")):
        text = path.read_text()
        assert '"tests"' not in text and "'tests'" not in text, f"{path.name} puts tests/ on its path"
        assert not _imported_names(path) & (TEST_MODULES | {"tests"}), path.name


def test_the_package_imports_nothing_from_tools_or_tests():
    tools = {path.stem for path in (ROOT / "tools").glob("*.py")} | {"tools", "tests"}
    for path in sorted((ROOT / "pytest_edgeprof").rglob("*.py")):
        assert not _imported_names(path) & (tools | TEST_MODULES), path.relative_to(ROOT)
