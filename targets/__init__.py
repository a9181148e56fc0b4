"""Deployment targets: every inference backend behind the one `edge_tan.runner.Runner` interface.

- one module per backend (`onnxruntime`, `openvino`, `tensorrt`, `torch_ref`, `torch_cuda`), each
  declaring itself once to `registry` (name, aliases, artifact suffix, packages, builder, runner);
- `registry`: the declarations, `available()` without importing a backend, discovery of plugins;
- `opener`: `open_model()`, the one way from a model spec to an open Runner (builds when needed);
- `build`: `build_artifact()` (model -> fp32 ONNX -> the backend's builder, cached by content hash);
- `onnx_file`: ONNX metadata helpers (needs only `onnx`);
- `calibration`: INT8 calibration windows warped the way the tracker sees them, NNCF quantisation.

Nothing heavy is imported by this package itself.
"""
