"""A grid model at a precision through a runtime: what each cell of those axes times.

``Deployer.deploy`` turns a float32 module into a ``Deployed`` (``measure/deployed.py``): eager at
fp32/fp16/bf16, int8 through PT2E, ``torch.compile`` over either, ONNX Runtime (and its TensorRT
provider) from an exported, for int8 quantized, ONNX file. ``support.unsupported`` says, once per
device, which deployments cannot run usefully there; ``DeployUnsupported`` is one model that a
deployment cannot handle (its exporter or quantizer fails; ``errors.py``), skipped with the reason.

Importing the package imports no torch: the plugin asks ``support`` before any model is built.
"""
