"""Nothing runs from a cache, and a broken cache is rebuilt, never read as "model unsupported".

The deployed-model cache tried as a hostile or unlucky user would: a crafted ``.pt2`` archive whose
weight is a pickle that would write a file, a cached model cut short, a cache folder that cannot be
written, a disk that fills while a model is exported. Real pytest runs of a small model, real files.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import resource
import signal
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import pytest
import torch

from pytest_edgeprof import cache_integrity
from pytest_edgeprof.cache_integrity import CacheWarning, read_verified, write_verified
from pytest_edgeprof.errors import UsageError

FAST = ["--device", "cpu", "--no-energy", "--benchmark-max-time", "0.02", "--benchmark-min-rounds", "3",
        "-p", "no:cacheprovider", "-W", "always::UserWarning"]

TINY = """
import torch
from torch import nn
from pytest_edgeprof.measurement import Cell

def test_tiny(edgeprof):
    torch.manual_seed(0)  # the same weights each run: the same cache file
    net = nn.Sequential(nn.Conv2d(3, {width}, 3), nn.ReLU(), nn.Conv2d({width}, {width}, 3))
    edgeprof(net, cell=Cell("tiny", "base", 1, (3, 16, 16), "{precision}", "{runtime}"))
"""


@pytest.fixture(autouse=True)
def own_cache(monkeypatch, tmp_path) -> Path:
    """This test's own cache folder, so what it breaks breaks nothing else; the session's device peaks
    are shared (probing them again would only cost time)."""
    peaks = Path(os.environ["XDG_CACHE_HOME"]) / "pytest-edgeprof" / "peaks"
    peaks.mkdir(parents=True, exist_ok=True)
    (tmp_path / "cache" / "pytest-edgeprof").mkdir(parents=True)
    (tmp_path / "cache" / "pytest-edgeprof" / "peaks").symlink_to(peaks)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "pytest-edgeprof" / "deployed"


def _suite(pytester: pytest.Pytester, precision: str, runtime: str, width: int = 8) -> None:
    pytester.makepyfile(TINY.format(precision=precision, runtime=runtime, width=width))


class Planted:
    """Unpickling this writes ``marker``: what a hostile weight in a shared cache would do (os.system alike)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "code ran"))


def craft_pt2(archive: Path, marker: Path) -> None:
    """Rewrite a real ``torch.export`` archive as an attacker would: one weight marked ``use_pickle`` in
    ``model_weights_config.json`` and that weight's file replaced by a pickle of :class:`Planted`."""
    with zipfile.ZipFile(archive) as source:
        entries = [(info, source.read(info.filename)) for info in source.infolist()]
    config_name = next(info.filename for info, _ in entries if info.filename.endswith("model_weights_config.json"))
    config = json.loads({info.filename: data for info, data in entries}[config_name])
    weight = next(iter(config["config"].values()))
    weight["use_pickle"] = True
    victim = config_name.rsplit("/", 1)[0] + "/" + weight["path_name"]
    payload = {config_name: json.dumps(config).encode(), victim: pickle.dumps(Planted(marker))}
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as crafted:
        for info, data in entries:
            crafted.writestr(info, payload.get(info.filename, data))


def test_a_crafted_pt2_in_the_cache_runs_no_code_and_the_cell_is_measured_after_a_rebuild(pytester, own_cache, tmp_path):
    _suite(pytester, "int8", "eager")
    pytester.runpytest(*FAST).assert_outcomes(passed=1)
    (archive,) = own_cache.glob("*.pt2")
    made = archive.read_bytes()
    marker = tmp_path / "marker"
    craft_pt2(archive, marker)
    crafted = archive.read_bytes()  # and its record, as whoever can write the cache can write it: a plain digest
    record = {"hmac_sha256": hashlib.sha256(crafted).hexdigest(), "bytes": len(crafted)}
    archive.with_name(archive.name + ".hmac").write_text(json.dumps(record))
    # the craft is real: torch.export.load of this file runs the planted code
    with pytest.raises(Exception), warnings.catch_warnings():  # noqa: B017 (whatever the planted pickle leaves behind)
        warnings.simplefilter("ignore")
        torch.export.load(str(archive))
    assert marker.exists(), "the crafted archive should run code when loaded unsafely"
    marker.unlink()

    result = pytester.runpytest(*FAST, "--benchmark-json=run.json")
    result.assert_outcomes(passed=1)
    assert not marker.exists()
    result.stdout.fnmatch_lines([f"*CacheWarning: deployed-model cache file {archive} is unreadable (its bytes are not "
                                 "what edgeprof wrote*); discarded, rebuilding it*"])
    info = json.loads((pytester.path / "run.json").read_text())["benchmarks"][0]
    assert info["stats"]["rounds"] >= 3 and info["extra_info"]["precision"] == "int8"
    assert archive.read_bytes() != pickle.dumps(Planted(marker)) and zipfile.is_zipfile(archive)
    assert len(archive.read_bytes()) == len(made)  # rebuilt: the model as it was made
    again = pytester.runpytest(*FAST)
    again.assert_outcomes(passed=1)
    assert "CacheWarning" not in again.stdout.str() and not marker.exists()


@pytest.mark.parametrize("precision, runtime, suffix", [("fp32", "onnxruntime", ".onnx"), ("int8", "eager", ".pt2")])
def test_a_cached_model_cut_short_is_named_rebuilt_and_measured(pytester, own_cache, precision, runtime, suffix):
    _suite(pytester, precision, runtime)
    pytester.runpytest(*FAST).assert_outcomes(passed=1)
    (cached,) = own_cache.glob(f"*{suffix}")
    whole = cached.stat().st_size
    cached.write_bytes(cached.read_bytes()[: whole // 2])  # a copy cut off, a disk that filled
    result = pytester.runpytest(*FAST)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([(f"*CacheWarning: deployed-model cache file {cached} is unreadable "
                                  f"(it holds {whole // 2} bytes, {whole} were written*); discarded, rebuilding it*")])
    assert cached.stat().st_size == whole


GRID = ["--models", "mobilenet_v3_small", "--batch-sizes", "1", "--shapes", "16"]
SUITE = """
def test_inference(edgeprof, edgeprof_cell, edgeprof_model):
    edgeprof(edgeprof_model, cell=edgeprof_cell)
"""


def test_a_deployed_cache_that_cannot_be_written_is_one_line_before_any_cell(pytester, monkeypatch, tmp_path):
    """Tests may run as root, which chmod does not stop: the folder lies below a regular file instead."""
    a_file = tmp_path / "not_a_folder"
    a_file.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(a_file))
    pytester.makepyfile(SUITE)
    result = pytester.runpytest(*FAST, *GRID, "--runtime", "eager,onnxruntime")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([(f"ERROR: the deployed-model cache {a_file}/pytest-edgeprof/deployed: {a_file} is a "
                                  "file, so nothing can be written below it; give another path (XDG_CACHE_HOME sets it)")])
    assert "PASSED" not in result.stdout.str() and "SKIPPED" not in result.stdout.str()
    assert not (pytester.path / ".benchmarks" / "edgeprof-journal.jsonl").exists()
    plain = pytester.makepyfile(test_plain=TINY.format(precision="fp32", runtime="eager", width=8))
    pytester.runpytest(*FAST, plain, "--benchmark-disable").assert_outcomes(passed=1)  # deploying nothing needs no cache


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes in a folder of mode 555: chmod cannot make it read-only")
def test_a_read_only_deployed_cache_is_one_line_before_any_cell(pytester, own_cache):
    own_cache.mkdir(parents=True)
    own_cache.chmod(0o555)
    try:
        _suite(pytester, "fp32", "onnxruntime")
        result = pytester.runpytest(*FAST)
    finally:
        own_cache.chmod(0o755)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines([f"*the deployed-model cache {own_cache}: {own_cache} is not writable by this user*"])


@pytest.mark.parametrize("precision, runtime", [("fp32", "onnxruntime"), ("int8", "eager")])
def test_a_disk_that_fills_while_exporting_stops_the_run_with_one_line(pytester, own_cache, precision, runtime):
    """A full disk, made with a file-size limit in a child: the journal's lines fit, the exported model does not."""
    _suite(pytester, precision, runtime, width=96)  # about 330 kB of weights

    def limit_file_size() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, resource.RLIM_INFINITY))

    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([sys.executable, "-m", "pytest", *FAST], cwd=pytester.path, env=env, capture_output=True,
                          text=True, preexec_fn=limit_file_size, timeout=300)
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout[-3000:]
    assert f"cannot write the deployed-model cache {own_cache}: File too large" in done.stdout, done.stdout[-3000:]
    assert "SKIPPED" not in done.stdout and "skipped" not in done.stdout.splitlines()[-1]
    assert [p.name for p in own_cache.iterdir()] == []  # nothing torn left behind


# --- the verified-file helper itself ----------------------------------------------------------------


def test_a_file_is_read_back_only_as_written_and_under_its_own_name(tmp_path):
    first, second = tmp_path / "a.bin", tmp_path / "b.bin"
    write_verified(first, b"first model")
    write_verified(second, b"second model")
    assert read_verified(first, "test file") == b"first model"
    first.write_bytes(second.read_bytes())  # a file another edgeprof made, under another name
    first.with_name("a.bin.hmac").write_bytes(second.with_name("b.bin.hmac").read_bytes())
    with pytest.warns(CacheWarning, match=f"test file {first} is unreadable .*discarded, rebuilding it"):
        assert read_verified(first, "test file") is None
    assert not first.exists() and not first.with_name("a.bin.hmac").exists()
    second.with_name("b.bin.hmac").unlink()  # written before digests were recorded, or by hand
    with pytest.warns(CacheWarning, match="no digest was recorded for it"):
        assert read_verified(second, "test file") is None
    assert read_verified(tmp_path / "never.bin", "test file") is None  # nothing there: nothing to say


def test_the_key_is_this_users_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    key = cache_integrity.key_path()
    assert key == tmp_path / "config" / "pytest-edgeprof" / "cache-key"
    write_verified(tmp_path / "x.bin", b"x")
    assert key.stat().st_mode & 0o777 == 0o600
    assert read_verified(tmp_path / "x.bin", "test file") == b"x"
    key.chmod(0o644)
    with pytest.raises(UsageError, match=f"the cache key {key} can be read by others .mode 644.; remove it"):
        read_verified(tmp_path / "x.bin", "test file")
    key.unlink()  # a new key: what the old one signed is not trusted
    with pytest.warns(CacheWarning, match="not what edgeprof wrote"):
        assert read_verified(tmp_path / "x.bin", "test file") is None
