"""The evidence that the kernel's out-of-memory killer ended a child: its cgroup's count, read from real files."""

import pytest

from pytest_edgeprof.measure import oom_killer


def test_a_rise_of_the_cgroups_oom_kill_count_is_the_evidence_and_nothing_else_is(tmp_path, monkeypatch):
    monkeypatch.setattr(oom_killer, "CGROUP_ROOT", tmp_path)  # this process's own cgroup path, under tmp_path
    files = oom_killer._counter_files()
    if not files:
        pytest.skip("/proc/self/cgroup names no memory cgroup here")
    counter = files[0]
    counter.parent.mkdir(parents=True)
    counter.write_text("oom 2\noom_kill 3\n")
    watch = oom_killer.OomWatch()
    try:
        assert watch.evidence(None) is None  # a kill by anyone else leaves the count as it was
        counter.write_text("oom 3\noom_kill 4\n")
        assert watch.evidence(None) == "the memory cgroup's oom_kill count rose from 3 to 4"
    finally:
        watch.close()


def test_no_readable_count_is_no_evidence(tmp_path, monkeypatch):
    monkeypatch.setattr(oom_killer, "CGROUP_ROOT", tmp_path / "nothing")
    assert oom_killer.oom_kills() is None
    watch = oom_killer.OomWatch()
    try:
        assert watch.evidence(None) is None
    finally:
        watch.close()
