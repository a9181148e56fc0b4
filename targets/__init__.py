"""Deployment targets: every inference backend behind the one `edge_tan.runner.Runner` interface.

- `registry`: backend names -> runner classes (imported only when opened), `available()`, `open_runner()`
- `build`: `build_artifact()` (model -> ONNX -> OpenVINO IR / TensorRT engine, cached by content hash)
  and `open_artifact()` (backend from the file suffix)
- one module per backend: `onnxruntime`, `openvino`, `tensorrt`, `torch_ref`, `torch_cuda`
- `calibration`: INT8 calibration windows warped the way the tracker sees them, NNCF quantisation

Nothing heavy is imported by this package itself.
"""
