"""``--edgeprof-store URL``: each finished run written into the results store at the session's end.

Registered only when the option (or its ini key ``edgeprof_store``) is set. At configure the store is
opened (connected, its tables created where missing): a store that cannot be reached is one usage line
before anything runs. At the session's end the run's pytest-benchmark document (the very one pytest-benchmark
saved, when it saved one; else one made the same way) is stored under ``--edgeprof-machine`` (default: the
board, GPU or CPU). A store that cannot be written then is one line, and the run is saved as a JSON file
that ``edgeprof store import`` adds later: never a lost run.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_edgeprof.compat import pytest_benchmark
from pytest_edgeprof.errors import UsageError

if TYPE_CHECKING:
    from pytest_edgeprof.runs.store.store import Store
    from pytest_edgeprof.runs.store.url import StoreUrl

UNSTORED_FOLDER = "edgeprof-unstored"  # under pytest-benchmark's storage folder


class StorePlugin:
    def __init__(self, store: Store, machine: str | None, storage: Path) -> None:
        self.store = store
        self.machine = machine
        self.storage = storage
        self._saved: dict[str, Any] | None = None  # the document pytest-benchmark saved, if it saved one
        self.line = ""  # what happened, said in the terminal summary
        self.failed = False

    @classmethod
    def open(cls, config: pytest.Config, url: StoreUrl, machine: str | None) -> StorePlugin:
        """The store opened now: one usage line where it cannot be reached or its tables created."""
        from pytest_edgeprof.runs.store.store import open_store

        try:
            store = open_store(url)
        except UsageError as exc:
            raise pytest.UsageError(f"--edgeprof-store: {exc}") from None
        return cls(store, machine, pytest_benchmark.storage_folder(pytest_benchmark.options(config).storage_uri))

    @pytest.hookimpl(optionalhook=True, trylast=True)
    def pytest_benchmark_update_machine_info(self, config: pytest.Config, machine_info: dict[str, Any]) -> None:
        """--edgeprof-machine names the run in its saved file too, so the file imports under the same name."""
        if self.machine is not None:
            machine_info.setdefault("edgeprof", {})["machine"] = self.machine

    @pytest.hookimpl(optionalhook=True, trylast=True)
    def pytest_benchmark_update_json(self, config: pytest.Config, benchmarks: list, output_json: dict[str, Any]) -> None:
        if self._saved is None:  # --benchmark-json's (with the rounds) before the autosave's
            self._saved = output_json

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Store the run; pytest-benchmark has saved its files by now (its hook wraps this one)."""
        document = self._saved if self._saved is not None else pytest_benchmark.run_document(session.config)
        try:
            if document is None:
                return
            document = json.loads(json.dumps(document))  # as a file holds it, so an import of that file matches
            self._store(document)
        finally:
            self.store.close()

    def _store(self, document: dict[str, Any]) -> None:
        from pytest_edgeprof.runs.saved import parse_run

        try:
            parse_run(Path("this run"), document)
        except UsageError:
            self.line = "edgeprof: nothing stored: the run holds no edgeprof cell"
            return
        try:
            run_id, added = self.store.add(document, self.machine, source="this run")
        except UsageError as exc:
            self.failed = True
            kept = self._keep(document)
            self.line = (f"edgeprof: {exc}; the run is saved as {kept}: edgeprof store import {kept} "
                         f"--store {self.store.url.shown} adds it")
            return
        state = "stored" if added else "already stored"
        self.line = f"edgeprof: run {state} as store:{run_id} in {self.store.url.shown}"

    def _keep(self, document: dict[str, Any]) -> Path:
        folder = self.storage / UNSTORED_FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        path = folder / f"{stamp}.json"
        path.write_text(json.dumps(document, indent=1), encoding="utf8")
        return path

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.line:
            terminalreporter.write_line(self.line, red=self.failed, bold=self.failed)
