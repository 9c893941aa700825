"""``--isolate``: each cell in a fresh spawned child process, so a crash loses only that cell.

On a small board a too-large batch does not raise: the kernel's out-of-memory killer ends the
process. In a child, that kill (or a segfault, or a CUDA error) ends only the child; the parent
records the cell as out of memory where the kernel says its killer sent the SIGKILL
(``oom_killer.py``), else as failed with the signal, and goes on. Memory figures from a child are
that cell's alone, since nothing else ran in it.
"""

from __future__ import annotations

import multiprocessing
import resource
import signal
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import nn

from pytest_edgeprof.device import DeviceProfile
from pytest_edgeprof.errors import DeployUnsupported, UsageError, first_line
from pytest_edgeprof.measure.cell import measure_cell, one_untimed_call, probe_memory
from pytest_edgeprof.measure.deployed import Deployed
from pytest_edgeprof.measure.energy import open_meter
from pytest_edgeprof.measure.oom_killer import OomWatch
from pytest_edgeprof.measure.timing import WARM_UP_S, StoppingRule
from pytest_edgeprof.measurement import Cell, Measurement
from pytest_edgeprof.outcome import OOM_KILLED, Outcome

if TYPE_CHECKING:
    from pytest_edgeprof.measure.emulation import Target


class Buildable(Protocol):
    """A model by reference that builds itself where it runs (``models.variants.ModelRef``): its
    ``build`` returns the model and what a pruned variant really is (``.model``, ``.pruning``)."""

    def build(self, device: str = "cpu", progress: bool = False) -> Any: ...


class Deploys(Protocol):
    """Makes a cell's precision and runtime of a float32 module (``models.deploy.Deployer``), or raises
    ``DeployUnsupported``."""

    def deploy(self, module: nn.Module, cell: Cell, device: str, identity: dict[str, str]) -> Deployed: ...


@dataclass(frozen=True)
class IsolatedJob:
    """What a child needs to measure one cell; sent to it by pickling, never through a file."""

    cell: Cell
    profile: DeviceProfile
    model: Buildable | None = None  # a torchvision model, built in the child
    module: nn.Module | None = None  # or a user's module, pickled by reference to its class
    deployer: Deploys | None = None  # for a cell whose precision or runtime is not fp32 eager
    identity: dict[str, str] | None = None  # which network (the deployed-model cache's key)
    rule: StoppingRule | None = StoppingRule()  # when the timed rounds end; None: not timed (--benchmark-disable)
    memory_limit_bytes: int | None = None  # extra address space the child may map (CPU only)
    num_threads: int = 0
    no_energy: bool = False
    probe_only: bool = False  # peak memory of one call, nothing timed (edgeprof capacity)
    target: Target | None = None  # --emulate: the target whose figures are predicted beside the measured ones
    warm_up_s: float = WARM_UP_S  # warm-up's time bound


def run_isolated(job: IsolatedJob) -> Measurement:
    """Measure ``job.cell`` in a spawned child; a child that dies gives a failed Measurement (out of memory
    where the kernel says its killer ended it), a child that meets bad input (``UsageError``) raises it here."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child_main, args=(job, sender), name=f"edgeprof-{job.cell.id}", daemon=True)
    watch = OomWatch()
    try:
        child.start()
        sender.close()
        try:
            result = receiver.recv()
        except EOFError:  # the child died before it could answer
            result = None
        child.join()
        if isinstance(result, Measurement):
            return result
        if isinstance(result, UsageError):
            raise result
        if isinstance(result, str):
            return Measurement(job.cell, job.profile.name, Outcome.FAILED, result)
        return _death(job, child.exitcode, watch.evidence(child.pid))
    finally:
        watch.close()


def _death(job: IsolatedJob, exitcode: int | None, oom_evidence: str | None) -> Measurement:
    """A child that died without an answer: out of memory only where the kernel says its out-of-memory
    killer sent the SIGKILL (anyone may send one), else a failure naming the signal or the exit code."""
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        if name == "SIGKILL" and oom_evidence:
            return Measurement(job.cell, job.profile.name, Outcome.OUT_OF_MEMORY, f"{OOM_KILLED} ({oom_evidence})")
        error = f"child killed by {name}"
    else:
        error = f"child exited with code {exitcode} without a result"
    return Measurement(job.cell, job.profile.name, Outcome.FAILED, error)


def _child_main(job: IsolatedJob, sender: Connection) -> None:
    try:
        if job.num_threads:
            torch.set_num_threads(job.num_threads)
        built = job.model.build("cpu") if job.model is not None else None
        module = built.model if built is not None else job.module
        if module is None:
            raise ValueError("an isolated job needs a model to build or a module")
        try:
            model = _deployed(job, module)
        except DeployUnsupported as exc:  # the deployment cannot handle this model: the parent skips the cell
            sender.send(Measurement(job.cell, job.profile.name, Outcome.SKIPPED, first_line(exc, limit=300)))
            return
        if job.memory_limit_bytes:
            _limit_address_space(job.memory_limit_bytes)
        if job.probe_only:
            measurement = probe_memory(model, job.cell, job.profile)
        else:
            meter = open_meter(job.profile, job.no_energy)
            try:
                run_rounds = job.rule.run if job.rule is not None else one_untimed_call
                measurement = measure_cell(model, job.cell, job.profile, meter, run_rounds, target=job.target,
                                           warm_up_s=job.warm_up_s)
            finally:
                meter.close()
        if built is not None:
            measurement.pruning = built.pruning
        sender.send(measurement)
    except UsageError as exc:  # bad input (a weights file, an image folder): the parent raises it again
        sender.send(exc)
    except BaseException as exc:  # anything short of a kill: report it, the parent records it
        sender.send(first_line(exc, with_type=True, limit=300))
    finally:
        sender.close()


def _deployed(job: IsolatedJob, model: nn.Module) -> nn.Module | Deployed:
    cell = job.cell
    if job.deployer is None or cell.runs_as_built:
        return model
    return job.deployer.deploy(model, cell, job.profile.torch_device, job.identity or {})


def _limit_address_space(extra_bytes: int) -> None:
    """Let the child map at most ``extra_bytes`` more than it has now (libraries already loaded)."""
    status = Path("/proc/self/status").read_text()
    mapped = next(int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmSize:"))
    resource.setrlimit(resource.RLIMIT_AS, (mapped + extra_bytes, resource.RLIM_INFINITY))
