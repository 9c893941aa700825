"""Shared boards through labgrid (issue 24, item 5), against a real labgrid coordinator and exporter on
loopback started once for the module: a place by name and by tags, a place held by another user (the one
line after the wait, and the wait that ends when it is freed), the place given back after the block, after
an exception, a KeyboardInterrupt and a real SIGINT; an unreachable coordinator; the spec's parser."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from loopback_board import NoBoard, start_sshd
from test_plugin_variants import SUITE

from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.remote.labgrid_client import (
    LabgridClient,
    PlaceState,
    client_identity,
    parse_places,
    resolve_coordinator,
)
from pytest_edgeprof.remote.labgrid_place import (
    INSTALL,
    PlaceAddress,
    PlaceSpec,
    hold_place,
    parse_board_wait,
    parse_place_spec,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
HAS_LABGRID = importlib.util.find_spec("labgrid") is not None
needs_labgrid = pytest.mark.skipif(not HAS_LABGRID, reason=f"labgrid is not installed ({INSTALL})")

EXPORTER_CONFIG = """
board1:
  NetworkService:
    address: 127.0.0.1
    port: 2201
    username: edge
board2:
  NetworkService:
    address: 127.0.0.1
    port: 2202
    username: edge2
"""
PLACES = {  # name: (the exporter's group it takes, its tags)
    "nano1": ("board1", ("board=nano", "lab=a")),
    "nano2": ("board2", ("board=nano",)),
    "bare": (None, ("board=bare",)),  # no NetworkService
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _client(coordinator: str, *args: str, user: str | None = None) -> str:
    env = {**os.environ, **({"LG_USERNAME": user} if user else {})}
    done = subprocess.run([sys.executable, "-m", "labgrid.remote.client", "-x", coordinator, *args], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _start(command: list[str], cwd: Path, log: str) -> subprocess.Popen[bytes]:
    with open(cwd / log, "wb") as out:
        return subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A labgrid coordinator and an exporter of two NetworkServices on loopback; the places of PLACES. Yields
    the coordinator's HOST:PORT."""
    if not HAS_LABGRID:
        pytest.skip(f"labgrid is not installed ({INSTALL})")
    root = tmp_path_factory.mktemp("labgrid")
    coordinator = f"127.0.0.1:{_free_port()}"
    (root / "exporter.yaml").write_text(EXPORTER_CONFIG)
    processes = [_start([sys.executable, "-m", "labgrid.remote.coordinator", "-l", coordinator], root, "coordinator.log")]
    try:
        _wait_until(lambda: _answers(coordinator), "the coordinator", root / "coordinator.log")
        processes.append(_start([sys.executable, "-m", "labgrid.remote.exporter", "-c", coordinator, "--name", "exp",
                                 str(root / "exporter.yaml")], root, "exporter.log"))
        _wait_until(lambda: _client(coordinator, "resources").count("NetworkService") == 2, "the exporter",
                    root / "exporter.log")
        for name, (group, tags) in PLACES.items():
            _client(coordinator, "-p", name, "create")
            _client(coordinator, "-p", name, "set-tags", *tags)
            if group:
                _client(coordinator, "-p", name, "add-match", f"exp/{group}/NetworkService")
        yield coordinator
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=30)


def _answers(coordinator: str) -> bool:
    try:
        _client(coordinator, "places")
        return True
    except AssertionError:
        return False


def _wait_until(ready, what: str, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not start: {log.read_text()[-2000:]}")
        time.sleep(0.3)


def _state(coordinator: str) -> tuple[dict[str, PlaceState], str]:
    """The places, and the reservations the coordinator still holds (its ``reservations`` output)."""
    return LabgridClient(coordinator).places(), _client(coordinator, "reservations").strip()


@pytest.fixture
def alice(farm: str) -> Iterator[str]:
    """Another user who acquires nano1 with labgrid-client (LG_USERNAME=alice); released after the test."""
    _client(farm, "-p", "nano1", "acquire", user="alice")
    yield "alice"
    subprocess.run([sys.executable, "-m", "labgrid.remote.client", "-x", farm, "-p", "nano1", "release", "--kick"],
                   capture_output=True, timeout=60)  # fails where the test freed it already


def _assert_all_given_back(coordinator: str) -> None:
    """No place acquired, none allocated to a reservation (one request: the places list both)."""
    places = LabgridClient(coordinator).places()
    assert {name: (place.acquired, place.reservation) for name, place in places.items()} == {
        name: (None, None) for name in PLACES}


# --- the place held and given back ---------------------------------------------------------------


@needs_labgrid
def test_a_place_by_name_yields_its_network_service_and_is_given_back_after(farm: str) -> None:
    with hold_place("labgrid:nano1", farm) as address:
        assert address == PlaceAddress("nano1", "127.0.0.1", 2201, "edge", farm)
        assert LabgridClient(farm).places()["nano1"].acquired == client_identity()
    _assert_all_given_back(farm)


def test_the_coordinator_is_the_one_given_else_lg_coordinator_else_labgrids_default(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LG_COORDINATOR", raising=False)
    assert resolve_coordinator(None) == "127.0.0.1:20408"
    monkeypatch.setenv("LG_COORDINATOR", "farm:20408")
    assert (resolve_coordinator(None), resolve_coordinator("other:1")) == ("farm:20408", "other:1")


@needs_labgrid
def test_by_tag_takes_the_free_place_when_another_user_holds_one(farm: str, alice: str) -> None:
    with hold_place(PlaceSpec(tags=(("board", "nano"),)), farm) as address:
        assert (address.place, address.port, address.user) == ("nano2", 2202, "edge2")
    places = LabgridClient(farm).places()
    assert (places["nano1"].acquired.split("/")[1], places["nano2"].acquired, places["nano2"].reservation) == (
        "alice", None, None)


@needs_labgrid
def test_a_place_held_by_another_user_is_one_line_naming_the_holder_after_the_wait(farm: str, alice: str) -> None:
    started = time.monotonic()
    with pytest.raises(UsageError) as error, hold_place("labgrid:nano1", farm, wait_s=1.5):
        pytest.fail("the held place was given")
    assert time.monotonic() - started >= 1.5
    line = str(error.value)
    assert "\n" not in line
    assert line.startswith("labgrid:nano1: the place is held after waiting 1.5 s: nano1 acquired by alice on ")
    assert "`labgrid-client -p nano1 release` as alice" in line and "release --kick" in line
    places, reservations = _state(farm)
    assert places["nano1"].acquired.endswith("/alice") and reservations == ""  # ours is cancelled


@needs_labgrid
def test_all_places_with_the_tags_held_names_each_holder(farm: str, alice: str) -> None:
    _client(farm, "-p", "nano2", "acquire")  # this user, as a run killed before it gave the place back leaves it
    try:
        with pytest.raises(UsageError) as error, hold_place("labgrid:board=nano", farm):
            pytest.fail("a held place was given")
    finally:
        _client(farm, "-p", "nano2", "release")
    line = str(error.value)
    assert line.startswith("labgrid:board=nano: no place with these tags is free (--board-wait 0): nano1 acquired by alice")
    assert "nano2 acquired by your user" in line and "`labgrid-client -p nano2 release` as " in line


@needs_labgrid
def test_the_wait_ends_when_the_holder_frees_the_place(farm: str, alice: str) -> None:
    releaser = threading.Timer(1.0, _client, (farm, "-p", "nano1", "release"), {"user": "alice"})
    releaser.start()
    try:
        with hold_place("labgrid:nano1", farm, wait_s=60) as address:
            assert address.place == "nano1"
    finally:
        releaser.join()
    _assert_all_given_back(farm)


@needs_labgrid
def test_the_place_is_given_back_after_an_interrupted_block(farm: str) -> None:
    with pytest.raises(KeyboardInterrupt), hold_place("labgrid:nano1", farm):
        raise KeyboardInterrupt
    _assert_all_given_back(farm)


HOLDER = """
import sys, time
from pytest_edgeprof.remote.labgrid_place import hold_place
try:
    with hold_place("labgrid:board=nano,lab=a", sys.argv[1]) as address:
        print("held", address.place, flush=True)
        time.sleep(120)
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""


@needs_labgrid
def test_a_real_sigint_to_a_process_holding_the_place_gives_it_back(farm: str, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "LG_USERNAME": "holder"}
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(HOLDER), farm], env=env, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().split() == ["held", "nano1"]
        assert LabgridClient(farm).places()["nano1"].acquired.endswith("/holder")
        holder.send_signal(signal.SIGINT)
        assert holder.wait(timeout=60) == 0
        assert holder.stdout.read().strip() == "interrupted"
    finally:
        holder.kill()
        holder.wait()
    _assert_all_given_back(farm)


# --- what cannot be held -------------------------------------------------------------------------


@needs_labgrid
@pytest.mark.parametrize(("spec", "fragment"), [
    ("labgrid:nano9", "labgrid:nano9: no place 'nano9' on the labgrid coordinator {farm} (its places: bare, nano1, nano2)"),
    ("labgrid:board=orin", "labgrid:board=orin: no place on the labgrid coordinator {farm} has these tags (its places: "
                           "bare [board=bare]; nano1 [board=nano,lab=a]; nano2 [board=nano])"),
    ("labgrid:bare", "labgrid place bare has no NetworkService resource"),
])
def test_a_place_that_is_not_there_or_has_no_address_is_one_line(farm: str, spec: str, fragment: str) -> None:
    with pytest.raises(UsageError, match="^[^\n]*$") as error, hold_place(spec, farm):
        pytest.fail("a place was given")
    assert fragment.format(farm=farm) in str(error.value)
    if spec == "labgrid:bare":  # held, then given back
        _assert_all_given_back(farm)


def test_an_unreachable_coordinator_is_one_line_not_a_hang() -> None:
    if not HAS_LABGRID:
        pytest.skip(f"labgrid is not installed ({INSTALL})")
    address = f"127.0.0.1:{_free_port()}"
    started = time.monotonic()
    with pytest.raises(UsageError) as error, hold_place("labgrid:nano1", address, wait_s=30):
        pytest.fail("a place was given")
    assert str(error.value) == (f"labgrid coordinator {address} cannot be reached (Connection refused); give its "
                                "HOST:PORT with --lg-coordinator or LG_COORDINATOR")
    assert time.monotonic() - started < 20


NO_LABGRID = """
import sys
class HideLabgrid:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "labgrid":
            raise ModuleNotFoundError(name)
sys.meta_path.insert(0, HideLabgrid())
import pytest_edgeprof, pytest_edgeprof.plugin.hooks, pytest_edgeprof.remote.labgrid_place as lg
from pytest_edgeprof.errors import UsageError
try:
    with lg.hold_place("labgrid:nano1", "127.0.0.1:1"):
        pass
except UsageError as exc:
    print(exc)
"""


def test_without_labgrid_the_spec_says_how_to_install_it_and_importing_never_imports_labgrid() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run([sys.executable, "-c", NO_LABGRID], env=env, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == f"--device labgrid:... needs labgrid, which is not installed: {INSTALL}", done.stderr
    check = "import sys, pytest_edgeprof.remote.labgrid_place; print(any(m.startswith('labgrid') for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, text=True,
                          timeout=120).stdout.strip() == "False"


# --- the spec, the wait, labgrid-client's listing ------------------------------------------------

_TAG_KEYS = st.from_regex(r"[a-z][a-z0-9_]{1,8}", fullmatch=True)
_VALUES = st.from_regex(r"[A-Za-z0-9_.:/-]{1,12}", fullmatch=True)


@given(st.dictionaries(_TAG_KEYS, _VALUES, min_size=1, max_size=4))
def test_tags_round_trip_through_the_spec(tags: dict[str, str]) -> None:
    spec = parse_place_spec("labgrid:" + ",".join(f"{key}={value}" for key, value in tags.items()))
    assert dict(spec.tags) == tags and spec.name is None and spec.filters == tags
    assert parse_place_spec(str(spec)) == spec


@given(_VALUES.filter(lambda name: not name.startswith("+")))
def test_a_place_name_round_trips_and_is_reserved_by_its_name_tag(name: str) -> None:
    spec = parse_place_spec(f"labgrid:{name}")
    assert (spec.name, spec.filters, str(spec)) == (name, {"name": name}, f"labgrid:{name}")


@given(st.text(max_size=30))
def test_any_text_is_a_spec_or_one_line_naming_what_is_accepted(text: str) -> None:
    try:
        spec = parse_place_spec(text)
    except UsageError as exc:
        assert str(exc).startswith(f"bad labgrid place {text!r}: expected labgrid:PLACE or labgrid:TAG=VALUE[,TAG=VALUE]")
        return
    assert text.startswith("labgrid:") and parse_place_spec(str(spec)) == spec


@pytest.mark.parametrize("text", ["labgrid:", "labgrid", "ssh://nano", "labgrid:a b", "labgrid:+TOKEN", "labgrid:Board=x",
                                  "labgrid:b=x", "labgrid:board=", "labgrid:board=a,board=b", "labgrid:board=nano,",
                                  "labgrid:board=a=b", "labgrid:nano,lab=a"])
def test_bad_specs_are_refused(text: str) -> None:
    with pytest.raises(UsageError, match="^bad labgrid place .*: expected labgrid:PLACE or labgrid:TAG=VALUE"):
        parse_place_spec(text)


@pytest.mark.parametrize(("text", "seconds"), [("0", 0.0), ("30", 30.0), ("2.5s", 2.5), (" 600 s ", 600.0)])
def test_board_wait_takes_seconds(text: str, seconds: float) -> None:
    assert parse_board_wait(text) == seconds


@pytest.mark.parametrize("text", ["-1", "soon", "5m", "", "1e9", "nan"])
def test_a_bad_board_wait_is_one_line(text: str) -> None:
    with pytest.raises(UsageError, match=r"^bad --board-wait .*: expected seconds, 0 or more and at most a week"):
        parse_board_wait(text)


def test_labgrid_clients_listing_is_read_field_by_field() -> None:
    listing = textwrap.dedent("""\
        Place 'nano1':
          aliases: lab:n1, n1
          tags: board=nano, lab=a
          matches:
            exp/board1/NetworkService
          acquired: vm/alice
          acquired resources:
            exp/board1/NetworkService/NetworkService
          created: 2026-12-07 22:10:59.543388
          changed: 2026-12-07 22:11:01.273041
          reservation: ZNODWV02AL
        Place 'free':
          matches:
          acquired: None
          acquired resources:
          created: 2026-12-07 22:10:59.543388
          changed: 2026-12-07 22:11:01.273041
        """)
    assert parse_places(listing) == {
        "nano1": PlaceState("nano1", {"board": "nano", "lab": "a"}, ("lab:n1", "n1"), "vm/alice", "ZNODWV02AL",
                            "2026-12-07 22:11:01.273041"),
        "free": PlaceState("free", changed="2026-12-07 22:11:01.273041"),
    }


# --- a run through a place: the board over SSH, the place given back ------------------------------


@needs_labgrid
def test_a_run_on_a_labgrid_place_measures_on_its_board_and_gives_the_place_back(
        farm: str, board_python, pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The place's NetworkService is a real sshd on loopback (its own, so its board's cache is its own), its
    board a venv without torch: the cell is measured there, and the place is free again after the run."""
    import getpass

    try:
        sshd = start_sshd(tmp_path / "sshd")
    except NoBoard as exc:
        pytest.skip(f"no sshd: {exc}")

    (tmp_path / "exporter.yaml").write_text(f"loop:\n  NetworkService:\n    address: 127.0.0.1\n    port: {sshd.port}\n"
                                            f"    username: {getpass.getuser()}\n")
    exporter = _start([sys.executable, "-m", "labgrid.remote.exporter", "-c", farm, "--name", "loopexp",
                       str(tmp_path / "exporter.yaml")], tmp_path, "exporter.log")
    try:
        _wait_until(lambda: "loopexp/loop/NetworkService" in _client(farm, "resources"), "the exporter",
                    tmp_path / "exporter.log")
        _client(farm, "-p", "loop", "create")
        _client(farm, "-p", "loop", "add-match", "loopexp/loop/NetworkService")
        pytester.makepyfile(SUITE)
        monkeypatch.setenv("LG_COORDINATOR", farm)
        result = pytester.runpytest("--device", "labgrid:loop", "--ssh-config", str(sshd.client_config),
                                    "--board-python", str(board_python), "--models", "squeezenet1_1", "--shapes", "32",
                                    "--batch-sizes", "1", "--runtime", "onnxruntime", "--no-energy",
                                    "--benchmark-max-time", "0.5", "--benchmark-min-rounds", "5")
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines([f"edgeprof: board ssh://*@127.0.0.1:{sshd.port}: artifacts copied *"])
        assert LabgridClient(farm).places()["loop"].acquired is None  # given back at the end of the run
    finally:
        _client(farm, "-p", "loop", "delete")
        exporter.terminate()
        exporter.wait(timeout=30)
        sshd.kill()
