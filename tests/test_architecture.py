"""The layers of docs/architecture.md hold: no module imports a layer above its own, the session core
imports no feature plugin, and no module but the registry and the record writes a metric's saved key."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pytest_edgeprof
from pytest_edgeprof.metrics import METRICS

PACKAGE = Path(pytest_edgeprof.__file__).parent
VOCABULARY = {"errors", "axes", "metrics", "outcome", "budgets", "measurement", "measurement_parts", "saved_keys",
              "latency_stats", "paths", "device", "shared_options", "compat",
              "cache_integrity", "power_modes"}
CATALOGUE = {"models.zoo", "models.identity"}
LAYERS = [  # (layer, its modules' prefixes, what it may import besides itself)
    ("vocabulary", VOCABULARY, set()),
    ("catalogue", CATALOGUE, VOCABULARY),
    ("measure", {"measure"}, VOCABULARY | CATALOGUE),
    ("models", {"models"}, VOCABULARY | CATALOGUE | {"measure"}),
    ("runs", {"runs"}, VOCABULARY | CATALOGUE | {"measure", "models"}),
    ("remote", {"remote"}, VOCABULARY | CATALOGUE | {"measure", "models"}),
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer_of(module: str) -> tuple[str, set[str], set[str]] | None:
    for name, prefixes, allowed in LAYERS:
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return name, prefixes, allowed
    return None  # plugin/ and cli/: the front ends may import anything


def _imported(path: Path) -> set[str]:
    """The pytest_edgeprof modules ``path`` imports anywhere in it (inside functions too), without the prefix."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pytest_edgeprof"):
            base = node.module[len("pytest_edgeprof"):].lstrip(".")
            found |= {f"{base}.{alias.name}".lstrip(".") for alias in node.names} if not base else {base}
        elif isinstance(node, ast.Import):
            found |= {a.name[len("pytest_edgeprof."):] for a in node.names if a.name.startswith("pytest_edgeprof.")}
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: _module_name(p) or "__init__")
def test_no_module_imports_a_layer_above_its_own(path: Path) -> None:
    module = _module_name(path)
    layer = _layer_of(module)
    if layer is None:
        return
    name, own, allowed = layer
    for imported in _imported(path):
        permitted = own | allowed
        assert any(imported == p or imported.startswith(p + ".") for p in permitted), (
            f"{module} ({name}) imports {imported}; docs/architecture.md allows {sorted(permitted)}")


FEATURES = "plugin.features"
ENTRY_POINT = "plugin.hooks"  # registers the feature plugins: the one plugin module that may import them


def _is_in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


PLUGIN_MODULES = [path for path in MODULES if _is_in(_module_name(path), "plugin")]


@pytest.mark.parametrize("path", PLUGIN_MODULES, ids=_module_name)
def test_feature_plugins_depend_on_the_session_core_never_the_reverse(path: Path) -> None:
    """The core (``plugin/`` but ``features/`` and ``hooks.py``) imports no feature and not the entry point; a
    feature imports the core, not the entry point nor another feature; only ``features/__init__.py``, which
    registers them, imports each feature."""
    module, imported = _module_name(path), _imported(path)
    if module == ENTRY_POINT:
        return
    if module == FEATURES:  # the registrar
        forbidden = [name for name in imported if _is_in(name, ENTRY_POINT)]
    elif _is_in(module, FEATURES):
        forbidden = [name for name in imported if _is_in(name, ENTRY_POINT)
                     or (_is_in(name, FEATURES) and not _is_in(module, name) and not _is_in(name, module))]
    else:
        forbidden = [name for name in imported if _is_in(name, FEATURES) or _is_in(name, ENTRY_POINT)]
    assert forbidden == [], f"{module} imports {forbidden}; docs/architecture.md: features depend on the core, never the reverse"


def _written_keys(path: Path) -> list[tuple[int, str]]:
    """String keys of dict literals and of ``x["key"] = ...`` assignments, by line: how extra_info is written."""
    written = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Dict):
            written += [(k.lineno, k.value) for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)]
        elif isinstance(node, ast.Assign):
            written += [(t.lineno, t.slice.value) for t in node.targets
                        if isinstance(t, ast.Subscript) and isinstance(t.slice, ast.Constant)]
    return written


def test_only_the_registry_and_the_record_write_a_metrics_saved_key() -> None:
    """A metric's key written anywhere else would be a second place that decides what is saved."""
    keys = {m.key for m in METRICS.values()}
    allowed = {"metrics.py", "measurement.py", "measurement_parts.py"}
    not_saved = {("runs/layers.py", "flops"),  # a --sort choice of edgeprof layers, not a saved key
                 # edgeprof predict's JSON keys (issue 23), printed, never saved in a run
                 ("measure/predict/predictor.py", "peak_mem_bytes"), ("measure/predict/predictor.py", "energy_j_per_image")}
    offenders = [f"{path.relative_to(PACKAGE)}:{line} writes {key!r}" for path in MODULES if path.name not in allowed
                 for line, key in _written_keys(path)
                 if key in keys and (str(path.relative_to(PACKAGE)), key) not in not_saved]
    assert offenders == []


def test_every_warning_edgeprof_gives_is_an_edgeprof_warning() -> None:
    """One base (``errors.EdgeprofWarning``) lets a user silence or raise all of them with one ``-W`` filter: every
    warning class derives from it, and no call warns with a plain string or a built-in category."""
    import builtins

    offenders, bases = [], {}
    for path in MODULES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and node.name.endswith("Warning"):
                bases[node.name] = [ast.unparse(base) for base in node.bases]
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "warnings.warn" and node.args:
                given = node.args[0]
                name = ast.unparse(given.func) if isinstance(given, ast.Call) else ""
                if not name.lower().endswith("warning") or hasattr(builtins, name):  # a class, or a parameter holding one
                    offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno} warns {ast.unparse(given)[:40]}")

    def rooted(name: str) -> bool:
        return name == "EdgeprofWarning" or any(rooted(base) for base in bases.get(name, []))

    offenders += [f"class {name}({', '.join(of)})" for name, of in bases.items() if not rooted(name)]
    assert bases["EdgeprofWarning"] == ["UserWarning"] and offenders == []


MOST_LINES = 450  # a module longer than this holds more than one concern: split it


def test_no_module_is_longer_than_most_lines() -> None:
    lengths = {str(path.relative_to(PACKAGE)): len(path.read_text().splitlines()) for path in MODULES}
    assert {name: lines for name, lines in lengths.items() if lines > MOST_LINES} == {}
