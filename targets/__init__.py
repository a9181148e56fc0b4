"""Deployment targets: the artifact backends behind the one `edge_tan.runtime.runner.Runner` interface.

- one module per backend (`onnxruntime`, `openvino`, `tensorrt`; the torch ones, `torch_ref` and
  `torch_cuda`, live on the torch side in `edge_tan.export`), each declaring itself once to the
  registry (`edge_tan.runtime.registry`: name, aliases, artifact suffix, packages, builder, runner);
- `opener`: `open_model()`, the one way from a model spec to an open Runner (builds when needed;
  opening an artifact file is the runtime's `edge_tan.runtime.open.open_artifact`);
- `build`: `build_artifact()` (model -> fp32 ONNX -> the backend's builder, cached by content hash);
- `onnx_file`: ONNX metadata helpers (needs only `onnx`);
- `calibration`: INT8 calibration windows warped the way the tracker sees them, NNCF quantisation.

Nothing heavy is imported by this package itself.
"""
