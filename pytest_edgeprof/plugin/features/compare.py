"""``--edgeprof-compare-fail``: the in-run regression gate against the run ``--benchmark-compare`` names.

Registered only when ``--edgeprof-compare-fail`` is given. Its baseline is read at configure time,
before this run is saved; at the session's end this run's own records (``RunLog.as_saved_run()``)
are compared with it without writing and reading them back, and a regression fails the run.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import pytest

from pytest_edgeprof.compat import pytest_benchmark
from pytest_edgeprof.errors import UsageError

if TYPE_CHECKING:
    from pytest_edgeprof.plugin.session import EdgeprofSession
    from pytest_edgeprof.runs.compare import Threshold
    from pytest_edgeprof.runs.saved import SavedRun


class CompareGatePlugin:
    def __init__(self, baseline: SavedRun, thresholds: list[Threshold], session: EdgeprofSession) -> None:
        self.baseline = baseline
        self.thresholds = thresholds
        self._session = session
        self.regressions: list[str] = []  # one line per regressed cell and metric

    @classmethod
    def from_config(cls, config: pytest.Config, spec: str, session: EdgeprofSession) -> CompareGatePlugin:
        """The baseline ``--benchmark-compare`` names and the thresholds; one usage line where either is wrong."""
        from pytest_edgeprof.runs.compare import parse_fail_spec
        from pytest_edgeprof.runs.saved import load_run

        options = pytest_benchmark.options(config)
        if not options.compare:
            raise pytest.UsageError("--edgeprof-compare-fail needs --benchmark-compare[=RUN], the run to compare with")
        try:
            thresholds = parse_fail_spec(spec)
            baseline = load_run(options.compare if isinstance(options.compare, str) else "latest", options.storage_uri)
        except UsageError as exc:
            raise pytest.UsageError(f"--edgeprof-compare-fail: {exc}") from None
        return cls(baseline, thresholds, session)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """Fail the run when a cell regressed against the baseline."""
        from pytest_edgeprof.runs.compare import regressions

        try:
            found = regressions(self.baseline, self._session.log.as_saved_run(), self.thresholds)
        except UsageError as exc:  # no cell in common: the gate gated nothing, which is no pass
            sys.stderr.write(f"ERROR: --edgeprof-compare-fail: {exc}\n")
            session.exitstatus = pytest.ExitCode.USAGE_ERROR
            return
        self.regressions = [regression.line() for regression in found]
        if found:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        """The regressions; registered after the core, this runs before its broken budgets and answer."""
        if not self.regressions:
            return
        terminalreporter.write_sep("=", "edgeprof: regressions past --edgeprof-compare-fail", red=True, bold=True)
        for line in self.regressions:
            terminalreporter.write_line(line)
