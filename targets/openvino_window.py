"""The tracker's window graph for OpenVINO: the artifact's network plus the per-pass work around it.

Why: at INT8 the network takes a few ms per frame, so the numpy steps around it (normalising the
window into a float buffer, subtracting the two seg channels, copying two full-size channels out,
adding the landmark template) are a measurable share of each frame. Built at load time from the
artifact's own IR (the file on disk and its contract stay as they are, so every artifact, older ones
included, gets it), compiled once, and used by `OpenVinoRunner.infer_window` only:

- input: the (1, 1, W, W) uint8 window as cv2.warpAffine cuts it; convert + (x - mean/scale) /
  (std/scale) in-graph (PrePostProcessor), i.e. the metadata's input normalisation;
- "score" (1, 1, W, W) = seg[:, 1] - seg[:, 0] (lv minus background logit) instead of "seg";
- "landmarks_win" (1, 6) = landmarks + the metadata template (window px) instead of "landmarks";
- every other output (view, anything a later model adds) unchanged.

`Runner.infer(batch)` keeps running the artifact's graph as exported (parity's open loop and the
bench's model-only timing use it).

Opt-in (`OpenVinoRunner(..., fuse_window=True)`), not the default, because on the CPU it was measured
on (2-core AMD EPYC, AVX-512, OpenVINO 2026.4) it did not pay: the numpy steps it replaces cost about
36 us per pass in all (normalise 25, subtract 7, the second channel's copy 4; min of 300 calls), while
the graph's own kernels got slower around the new ops (per-node PERF_COUNT, fp32 and int8 interleaved:
the x2 upsampling of seg took longer once it fed the score convolution instead of a Result), and at
INT8 the in-graph normalisation folds into the input FakeQuantize, which moves some windows' landmarks
by up to 0.45 px against the numpy path (within INT8 parity, but a changed answer).
"""

from __future__ import annotations

import numpy as np

from edge_tan.runtime.artifact import ModelMetadata

# what the window graph does, as `describe()` and the bench rows report it
WINDOW_GRAPH = ("uint8 window normalised in-graph", "score = lv - background", "landmarks + template in-graph")


def window_model(model, md: ModelMetadata):
    """ov.Model for one uint8 window: see the module docstring. `model` is not modified."""
    import openvino as ov
    from openvino import opset13 as ops
    from openvino.preprocess import PrePostProcessor

    w = int(md.window)
    m = model.clone()
    m.reshape({m.inputs[0].get_any_name(): [1, 1, w, w]})
    ppp = PrePostProcessor(m)
    ppp.input().tensor().set_element_type(ov.Type.u8)
    # x_net = (u8 * scale - mean) / std = (u8 - mean / scale) / (std / scale)
    ppp.input().preprocess().convert_element_type(ov.Type.f32) \
        .mean(float(md.input_mean / md.input_scale)).scale(float(md.input_std / md.input_scale))
    m = ppp.build()
    results, params = [], list(m.get_parameters())
    for res in m.get_results():
        src = res.input(0).get_source_output()
        names = set(src.get_names()) | set(res.output(0).get_names())
        if "seg" in names:
            results.append(_result(ops, _score(ops, src), "score"))
        elif "landmarks" in names:
            tpl = ops.constant(md.template_array.reshape(1, 6).astype(np.float32))
            results.append(_result(ops, ops.add(src, tpl), "landmarks_win"))
        else:
            results.append(res)
    return ov.Model(results, params, "edge_tan_window")


def _score(ops, seg):
    """lv - background from the 2-channel seg output: a 1x1 convolution with weights (-1, +1).

    One JIT kernel, exact (x * +-1 is exact, then one add), and the one-channel result is cheaper to
    reorder and copy out than two channels. (A Split + Subtract ran OpenVINO's reference Split, ~0.25 ms
    a call; taking the difference before TAN's final x2 upsampling made the one-channel resize slower
    than the two-channel one. Both measured with PERF_COUNT, scripts in the issue 23 report.)
    """
    k = ops.constant(np.array([-1.0, 1.0], np.float32).reshape(1, 2, 1, 1))
    return ops.convolution(seg, k, [1, 1], [0, 0], [0, 0], [1, 1])


def _result(ops, node, name: str):
    out = node.output(0)
    out.get_tensor().set_names({name})
    r = ops.result(out)
    r.set_friendly_name(name)
    return r
