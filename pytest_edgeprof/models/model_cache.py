"""The session's models: the one on the device now, what each built variant really is, and accuracy.

Only the current model is kept on the device: the grid is model-major, and a model left there would
count against the next model's memory (and may not fit beside it on a small board). A variant that
cannot be pruned is remembered, so it is tried once; accuracy is evaluated once per variant and shape.
"""

from __future__ import annotations

import gc
from pathlib import Path

import torch
from torch import nn

from pytest_edgeprof.axes import RUNTIMES
from pytest_edgeprof.errors import DeployUnsupported
from pytest_edgeprof.measure.deployed import Deployed, eager
from pytest_edgeprof.measure.timing import WARM_UP_S, warm_up
from pytest_edgeprof.measurement import Accuracy, Cell, Pruning
from pytest_edgeprof.models.deploy.deployer import Deployer
from pytest_edgeprof.models.prune import PruneUnsupported
from pytest_edgeprof.models.variants import BuiltModel, ModelRef
from pytest_edgeprof.models.zoo import model_input, reference_input_shape, task_of

# A deployed model is one model at one precision, through one runtime, for one input shape.
DeployedKey = tuple[ModelRef, str, str, tuple[int, int, int]]


class ModelCache:
    def __init__(self, device: str, eval_data: Path | None = None, eval_limit: int | None = None,
                 deployer: Deployer | None = None) -> None:
        self.device = device
        self.eval_data = eval_data  # an ImageFolder: accuracy per variant, shape and deployment
        self.eval_limit = eval_limit
        self.deployer = deployer or Deployer()
        self.warm_up_s = WARM_UP_S  # warm-up's time bound (the plugin sets the run's)
        self._current: tuple[ModelRef, nn.Module] | None = None
        self._deployed: tuple[DeployedKey, Deployed] | None = None
        self._pruning: dict[ModelRef, Pruning | None] = {}
        self._unprunable: dict[ModelRef, str] = {}
        self._undeployable: dict[tuple[ModelRef, str, str], str] = {}
        self._accuracy: dict[DeployedKey, Accuracy] = {}

    def build(self, ref: ModelRef) -> nn.Module:
        """The model on the device in eval mode, built and warmed up once while it is the current one.
        A variant that cannot be pruned raises ``PruneUnsupported``."""
        if self._current is None or self._current[0] != ref:
            self.release()
            built = self._build_once(ref, self.device)
            sample = model_input(built.model, 1, reference_input_shape(ref.name), self.device)
            with torch.inference_mode():
                warm_up(lambda: built.model(sample), self.device, max_seconds=self.warm_up_s)
            self._current = (ref, built.model)
        return self._current[1]

    def deploy(self, ref: ModelRef, cell: Cell) -> Deployed:
        """The model as the cell's precision and runtime run it, made once while it is the current one
        (a compiled model once per cell: each batch and shape is its own graph). ``DeployUnsupported``
        where the deployment cannot handle the model (remembered: tried once)."""
        key = (ref, cell.precision, cell.runtime, cell.input_shape)
        if self._deployed is not None and self._deployed[0] == key and not RUNTIMES[cell.runtime].per_shape:
            return self._deployed[1]
        module = self.build(ref)
        if cell.runs_as_built:
            return eager(module, self.device)
        failed = self._undeployable.get(key[:3])
        if failed:
            raise DeployUnsupported(failed)
        self._deployed = None
        try:
            deployed = self.deployer.deploy(module, cell, self.device, ref.identity())
        except DeployUnsupported as exc:
            self._undeployable[key[:3]] = str(exc)
            raise
        self._deployed = (key, deployed)
        return deployed

    def prepare_variant(self, ref: ModelRef) -> None:
        """Prune (or find in the variant cache) a variant without keeping it, for a child process to load."""
        if ref.variant != "base" and ref not in self._pruning:
            self._build_once(ref, "cpu")

    def ref_of(self, model: nn.Module) -> ModelRef | None:
        """The reference of ``model`` if it is the current grid model."""
        return self._current[0] if self._current is not None and model is self._current[1] else None

    def pruning(self, ref: ModelRef) -> Pruning | None:
        """What a built variant really is; None for the base model."""
        return self._pruning.get(ref)

    def accuracy(self, ref: ModelRef, cell: Cell) -> Accuracy | None:
        """Top-1/top-5 (mAP of a detector, mIoU of a segmenter) of the variant at the cell's shape, precision and
        runtime on the evaluation data; None without it, and for a detector's or segmenter's deployments
        other than fp32 eager (their scores are read from the float32 module)."""
        key = (ref, cell.precision, cell.runtime, cell.input_shape)
        task = task_of(ref.name)
        if task != "classification":
            if key not in self._accuracy and self.eval_data is not None and cell.runs_as_built:
                from pytest_edgeprof.models.task_accuracy import evaluate_task

                self._accuracy[key] = evaluate_task(self.build(ref), task, self.eval_data, cell.input_shape,
                                                    limit=self.eval_limit, device=self.device, model_name=ref.name)
            return self._accuracy.get(key)
        if key not in self._accuracy and self.eval_data is not None:
            from pytest_edgeprof.models.accuracy import evaluate, image_folder_loader

            loader, eval_set = image_folder_loader(self.eval_data, ref.name, cell.input_shape, limit=self.eval_limit)
            result = evaluate(self.deploy(ref, cell).predict, loader, eval_set=eval_set, progress=True)
            self._accuracy[key] = result.record()
        return self._accuracy.get(key)

    def evaluation_identity(self) -> str:
        """The evaluation data and limit behind accuracy, for the cell key; "" without it."""
        if self.eval_data is None:
            return ""
        return f"{self.eval_data.resolve()}|limit={self.eval_limit}"

    def release(self) -> None:
        """Drop the current model and give its device memory back."""
        self._current = self._deployed = None
        gc.collect()
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()

    def _build_once(self, ref: ModelRef, device: str) -> BuiltModel:
        if ref in self._unprunable:
            raise PruneUnsupported(self._unprunable[ref])
        try:
            built = ref.build(device, progress=True)
        except PruneUnsupported as exc:
            self._unprunable[ref] = str(exc)
            raise
        self._pruning[ref] = built.pruning
        return built
