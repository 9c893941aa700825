"""Run every bad-input try of bad_input_cases.py and print the table of docs/bad-input.md.

    python tools/bad_input_table.py > table.md

Each row is a real run: ``pytest`` in-process on a one-cell grid (mobilenet_v3_small, batch 1, 16x16,
--no-energy) in a fresh folder, or ``edgeprof`` through ``pytest_edgeprof.cli.main``, on files made
for real by ``make_files``. The message column is the one line the run printed (pytest's ``ERROR:`` or
``Exit:`` line, edgeprof's ``edgeprof:`` line on stderr). A row whose exit code or line differs from
what the inventory expects is marked with "(!)" and the script exits 1. About a minute on 2 cores.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's package
import bad_input_cases as inventory  # noqa: E402


def run_pytest(case: inventory.Case, folder: Path, index: int) -> inventory.Outcome:
    (folder / f"test_case_{index}.py").write_text(case.suite)  # a new module name per run: no import clash
    if case.ini:
        (folder / "pytest.ini").write_text("[pytest]\n" + case.ini + "\n")
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = pytest.main([str(folder / f"test_case_{index}.py"), *inventory.FAST, *inventory.GRID, *case.argv])
    return inventory.Outcome(int(code), out.getvalue(), err.getvalue())


def run(case: inventory.Case, files: dict[str, Path], scratch: Path, index: int) -> tuple[inventory.Outcome, bool]:
    case = case.formatted(files)
    folder = scratch / f"case_{index}"
    folder.mkdir()
    saved_env = {name: os.environ.get(name) for name, _ in case.env}
    os.environ.update(dict(case.env))
    cwd = Path.cwd()
    os.chdir(folder)
    try:
        outcome = run_pytest(case, folder, index) if case.pytest else inventory.run_cli(case)
        try:
            inventory.check(case, outcome, files)
            ok = True
        except AssertionError:
            ok = False
    finally:
        os.chdir(cwd)
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return outcome, ok


def cell(text: str, root: Path, files: dict[str, Path]) -> str:
    """Table text: each file by its name in the legend, temporary folders as '…', '|' escaped."""
    for name, path in sorted(files.items(), key=lambda item: -len(str(item[1]))):
        text = text.replace(str(path), name.upper())
    text = text.replace(str(root), "…").replace(str(ROOT) + os.sep, "")
    return text.replace("|", "\\|")


def main() -> int:
    rows = ["| input tried | message (the one line) | exit code | tested in |", "| --- | --- | --- | --- |"]
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files = inventory.make_files(root / "files")
        cases = inventory.PYTEST_CASES + inventory.CLI_CASES + inventory.COVERED_ELSEWHERE
        for index, case in enumerate(cases):
            outcome, ok = run(case, files, root, index)
            failures += not ok
            tried = f"pytest {case.tried}" if case.tried.startswith("--") else case.tried
            tried = "`" + tried.format(**{name: name.upper() for name in files}) + "`"
            message = cell(outcome.message(case.formatted(files)), root, files) + ("" if ok else " (!)")
            rows.append(f"| {cell(tried, root, files)} | {message} | {outcome.code} | {case.where or 'test_bad_input.py'} |")
            print(f"{index + 1}/{len(cases)} {case.tried}: exit {outcome.code}", file=sys.__stderr__)
    print("\n".join(rows))
    print("\nFiles: " + "; ".join(f"`{name.upper()}`: {what}" for name, what in inventory.FILES.items()) + ".")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
