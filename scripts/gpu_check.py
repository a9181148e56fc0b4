"""One prepared GPU check: `python scripts/gpu_check.py --weights W --out DIR`.

A one-off script for a borrowed machine, not part of the package (it is not in the wheel).

Made for a borrowed CUDA machine with minutes of time (PyTorch with CUDA, no TensorRT, no internet):
- network latency of TAN (given weights) and U-Net / PSPNet (random init: speed only) on torch CUDA
  fp32 (TF32 off), fp32+TF32 (TAN), fp16, each also replayed as a CUDA graph; batch 1 at the model
  window, median/p95/p99 over >= --runs runs after warm-up, timed with CUDA events; batch-N throughput;
- the runner as the tracker uses it (host array in, host arrays out: pinned copies + sync) and
  END-TO-END tracker fps on a phantom clip with the torch-cuda runner (export/torch_cuda.py);
- parity of torch-cuda fp32/fp16 against the CPU torch fp32 reference: open loop (same windows:
  Dice, landmark px, logit max |Δ|) and closed loop (Dice, landmarks) with the parity tolerances.
Writes DIR/gpu_check.json and DIR/gpu_check.md and prints a short table last. `--device cpu` runs the
same logic on CPU for a few iterations (tests). safetensors is optional: a minimal reader stands in.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
import types
from pathlib import Path


from edge_tan.numfmt import fmt
from edge_tan.runtime.errors import one_line

from edge_tan.bench.latency import stats_ms


# ---- environment ----------------------------------------------------------------------------
def _ensure_safetensors() -> str:
    """Use safetensors when installed; otherwise register a minimal read-only `safetensors.torch`
    (header JSON + raw little-endian tensors) so weights load on a bare `--no-deps` install."""
    try:
        import safetensors.torch  # noqa: F401
        return "safetensors"
    except ImportError:
        pass
    import torch

    dtypes = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64,
              "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
              "BOOL": torch.bool}

    def load_file(path, device="cpu"):
        raw = Path(path).read_bytes()
        n = int.from_bytes(raw[:8], "little")
        head = json.loads(raw[8:8 + n])
        base = 8 + n
        out = {}
        for k, v in head.items():
            if k == "__metadata__":
                continue
            a, b = v["data_offsets"]
            buf = bytearray(raw[base + a:base + b])
            t = torch.frombuffer(buf, dtype=dtypes[v["dtype"]]) if b > a else torch.empty(0, dtype=dtypes[v["dtype"]])
            out[k] = t.reshape(v["shape"]).to(device)
        return out

    pkg = types.ModuleType("safetensors")
    sub = types.ModuleType("safetensors.torch")
    sub.load_file = load_file
    pkg.torch = sub
    sys.modules["safetensors"], sys.modules["safetensors.torch"] = pkg, sub
    return "builtin reader"


def load_tan(weights: str):
    from edge_tan.export.weights import load_model
    module, md = load_model(weights)
    return module.eval().float(), md


def load_clip(path: str | None, frames: int):
    """A labelled clip: --clip npz/video, else the phantom; (sequence, description)."""
    from edge_tan.dataset import Sequence
    if path:
        from edge_tan.io.read import read_video
        seq = read_video(path)
        return seq, f"{Path(path).name} ({seq.n_frames} frames)"
    from edge_tan.bench.source import phantom_clip
    seq = phantom_clip(frames=frames)
    assert isinstance(seq, Sequence)
    return seq, f"phantom ({seq.n_frames} frames)"


# ---- timing -------------------------------------------------------------------------------
def _prep(module, device, precision):
    import torch
    m = copy.deepcopy(module).eval().to(device)
    return m.half() if precision == "fp16" else m.float()


def _set_tf32(on: bool) -> None:
    import torch
    torch.backends.cudnn.allow_tf32 = on
    torch.backends.cuda.matmul.allow_tf32 = on


def time_forward(module, device, precision: str, batch: int, size: int, runs: int, warmup: int,
                 cuda_graph: bool = False) -> dict:
    """Network-only time of module(x) with x resident on the device (CUDA events on GPU)."""
    import torch
    dtype = torch.float16 if precision == "fp16" else torch.float32
    x = torch.randn(batch, 1, size, size, device=device, dtype=dtype)
    cuda = torch.device(device).type == "cuda"
    with torch.inference_mode():
        if cuda_graph:
            s = torch.cuda.Stream()
            s.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(s):
                for _ in range(3):
                    module(x)
            torch.cuda.current_stream().wait_stream(s)
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g):
                module(x)
            fn = g.replay
        else:
            def fn():
                module(x)
        for _ in range(warmup):
            fn()
        if cuda:
            torch.cuda.synchronize()
            ev = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(runs)]
            for a, b in ev:
                a.record()
                fn()
                b.record()
            torch.cuda.synchronize()
            ns = [a.elapsed_time(b) * 1e6 for a, b in ev]
        else:
            ns = []
            for _ in range(runs):
                t0 = time.perf_counter_ns()
                fn()
                ns.append(time.perf_counter_ns() - t0)
    s = stats_ms(ns)
    s["images_per_s"] = batch * 1000.0 / s["median"] if s["median"] else None
    return s


def make_runner(module, md, device, precision: str, cuda_graph: bool):
    """The runner the tracker would use: torch-cuda on GPU, the CPU torch reference on CPU."""
    import torch
    if torch.device(device).type == "cuda":
        from edge_tan.export.torch_cuda import TorchCudaRunner
        return TorchCudaRunner(copy.deepcopy(module), metadata=md, precision=precision, cuda_graph=cuda_graph,
                               device=str(device))
    from edge_tan.export.torch_ref import TorchRunner
    return TorchRunner(copy.deepcopy(module), metadata=md)


# ---- the check ----------------------------------------------------------------------------
def run_check(args) -> dict:
    import torch

    from edge_tan.runtime.tracker import Tracker

    from edge_tan.bench import parity as P
    from edge_tan.bench.machine import machine_info
    from edge_tan.bench.run import end_to_end, sample_window

    st = _ensure_safetensors()
    t_start = time.perf_counter()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu_check: no CUDA GPU visible to torch (use --device cpu for a dry run)")
    device = torch.device("cuda:0" if args.device == "cuda" else "cpu")
    cuda = device.type == "cuda"
    dev_info = {"type": device.type, "torch": torch.__version__, "cuda": torch.version.cuda,
                "cudnn": torch.backends.cudnn.version() if cuda else None}
    if cuda:
        p = torch.cuda.get_device_properties(device)
        dev_info.update(name=p.name, memory_gb=round(p.total_memory / 2 ** 30, 1),
                        compute_capability=f"sm_{p.major}{p.minor}")
        torch.backends.cudnn.benchmark = True
    precisions = ["fp32", "fp16"] if cuda else ["fp32"]
    notes = [f"weights reader: {st}"]
    tan, md = load_tan(args.weights)
    size = int(md.window)
    rep = {"device": dev_info, "machine": machine_info(torch.get_num_threads()), "weights": str(args.weights),
           "model_trained": bool(md.trained), "window": size, "runs": args.runs, "latency": [], "runner": [],
           "e2e": [], "parity": {}, "notes": notes}
    warm = 20 if cuda else 1

    # 1) network-only latency (+ CUDA graph) and batch throughput
    models = [("tan", tan)]
    if args.baselines:
        from edge_tan.export.models.registry import build_model
        for name in [b.strip() for b in args.baselines.split(",") if b.strip()]:
            torch.manual_seed(0)
            models.append((name, build_model(name).eval()))
    from edge_tan.export.models.registry import count_params_macs
    for name, module in models:
        params, macs = count_params_macs(module, size)
        variants = [(p, False, False) for p in precisions]
        if cuda:
            variants = [("fp32", False, False), ("fp32", True, False), ("fp16", False, False),
                        ("fp32", False, True), ("fp16", False, True)]
            if name != "tan":
                variants = [v for v in variants if not v[1]]
        for prec, tf32, graph in variants:
            if cuda:
                _set_tf32(tf32)
            m = _prep(module, device, prec)
            entry = {"model": name, "precision": prec + ("+tf32" if tf32 else ""), "cuda_graph": graph,
                     "params": params, "macs": macs, "trained": bool(md.trained) if name == "tan" else False}
            try:
                s = time_forward(m, device, prec, 1, size, args.runs, warm, cuda_graph=graph)
                entry.update(median_ms=s["median"], p95_ms=s["p95"], p99_ms=s["p99"], min_ms=s["min"],
                             std_ms=s["std"], n=s["n"], fps=s["fps"])
                if not graph and args.batch > 1:
                    tb = time_forward(m, device, prec, args.batch, size, max(10, args.runs // 10), max(2, warm // 4))
                    entry.update(batch=args.batch, batch_median_ms=tb["median"], throughput_ips=tb["images_per_s"])
            except Exception as e:   # e.g. a graph capture that an op refuses: note it, keep going
                entry["error"] = one_line(e)
            rep["latency"].append(entry)
            del m
            if cuda:
                torch.cuda.empty_cache()
    if cuda:
        _set_tf32(False)

    # 2) runner latency (host in/out) and end-to-end tracker fps on the clip
    seq, desc = load_clip(args.clip, args.clip_frames)
    rep["clip"] = desc
    frames = list(seq.frames)
    runner_variants = [(p, g) for p in precisions for g in ((False, True) if cuda else (False,))]
    for prec, graph in runner_variants:
        entry = {"model": "tan", "precision": prec, "cuda_graph": graph}
        try:
            r = make_runner(tan, md, device, prec, graph)
            x = sample_window(Tracker(r), frames[0])
            from edge_tan.bench.latency import time_callable
            s = time_callable(lambda: r.infer(x), warmup=warm, runs=args.runs)
            entry.update(runner_median_ms=s["median"], runner_p95_ms=s["p95"], runner_fps=s["fps"])
            e2e = end_to_end(r, frames, args.frames)
            entry.update(e2e_fps=e2e["fps"], e2e_median_ms=e2e["median_ms"], e2e_p95_ms=e2e["p95_ms"],
                         non_network_share=e2e["non_network_share"], passes_per_frame=e2e["passes_per_frame"],
                         states=e2e["states"], e2e_frames=e2e["frames"])
            r.close()
        except Exception as e:
            entry["error"] = one_line(e)
        rep["runner"].append(entry)

    # 3) parity vs the CPU torch reference (open + closed loop)
    from edge_tan.export.torch_ref import TorchRunner
    ref_runner = TorchRunner(copy.deepcopy(tan).cpu(), metadata=md)
    refs = [P.run_reference(ref_runner, seq)]
    rep["reference_gt"] = refs[0].gt
    for prec in precisions:
        try:
            r = make_runner(tan, md, device, prec, False)
            opens = [P.open_loop(r, x) for x in refs]
            closeds = [P.closed_loop(r, x) for x in refs]
            s = P.summarise(opens, closeds, refs)
            checks = P.judge(s, P.tolerances_for(prec))
            fails = [c["label"] for c in checks.values() if c["pass"] is False]
            rep["parity"][prec] = {**s, "checks": {k: c["pass"] for k, c in checks.items()},
                                   "status": "fail" if fails else "pass", "failed": fails}
            r.close()
        except Exception as e:
            rep["parity"][prec] = {"status": "error", "error": one_line(e)}
    rep["wall_s"] = time.perf_counter() - t_start
    return rep


# ---- output -------------------------------------------------------------------------------
def markdown(rep: dict) -> str:
    d = rep["device"]
    lines = [f"# edge-tan GPU check — {d.get('name', d['type'])}", "",
             f"torch {d['torch']}, CUDA {d.get('cuda')}, cuDNN {d.get('cudnn')}; window {rep['window']}; "
             f"{rep['runs']} timed runs; weights {Path(rep['weights']).name} (trained: {rep['model_trained']}); "
             f"clip: {rep.get('clip')}; wall {rep.get('wall_s', 0):.0f} s", "",
             "## Network only (batch 1, input resident on the device; CUDA events)", "",
             "| model | precision | CUDA graph | median ms | p95 ms | p99 ms | fps | batch | img/s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for e in rep["latency"]:
        if "error" in e:
            lines.append(f"| {e['model']} | {e['precision']} | {e['cuda_graph']} | ❌ {e['error']} | | | | | |")
            continue
        lines.append(f"| {e['model']}{'' if e['trained'] else ' (untrained)'} | {e['precision']} | "
                      f"{'yes' if e['cuda_graph'] else 'no'} | {fmt(e['median_ms'], 3)} | {fmt(e['p95_ms'], 3)} | "
                      f"{fmt(e['p99_ms'], 3)} | {fmt(e['fps'], 0)} | {e.get('batch', '')} | "
                      f"{fmt(e.get('throughput_ips'), 0) if e.get('throughput_ips') else ''} |")
    lines += ["", "## TAN runner (host in/out) and end-to-end tracker", "",
              "| precision | CUDA graph | runner median ms | e2e fps | e2e median ms | non-network % | passes/frame |",
              "|---|---|---|---|---|---|---|"]
    for e in rep["runner"]:
        if "error" in e:
            lines.append(f"| {e['precision']} | {e['cuda_graph']} | ❌ {e['error']} | | | | |")
            continue
        lines.append(f"| {e['precision']} | {'yes' if e['cuda_graph'] else 'no'} | {fmt(e['runner_median_ms'], 3)} | "
                     f"{fmt(e['e2e_fps'], 0)} | {fmt(e['e2e_median_ms'], 3)} | "
                     f"{fmt(100 * e['non_network_share'], 0) if e.get('non_network_share') is not None else 'n/a'} | "
                     f"{fmt(e['passes_per_frame'], 2)} |")
    lines += ["", "## Parity vs CPU torch fp32", "",
              "| precision | status | open Dice | open lm px (max) | seg logit max abs diff | closed Dice | closed lm px |",
              "|---|---|---|---|---|---|---|"]
    for p, s in rep["parity"].items():
        if s.get("status") == "error":
            lines.append(f"| {p} | ❌ {s['error']} | | | | | |")
            continue
        sym = "✅" if s["status"] == "pass" else "❌"
        lines.append(f"| {p} | {sym} {s['status']} | {fmt(s['open_dice_mean'], 5)} | {fmt(s['open_lm_px_max'], 4)} | "
                     f"{s['logit_seg_max_abs']:.2e} | {fmt(s['closed_dice_mean'], 5)} | {fmt(s['closed_lm_px_mean'], 4)} |")
    lines += ["", "Paper Fig. 6 (Tesla P40): TAN 19 ms, U-Net 42 ms, PSPNet 138 ms per frame."]
    return "\n".join(lines) + "\n"


def print_summary(rep: dict) -> None:
    from rich.console import Console
    from rich.table import Table
    t = Table(title=f"gpu_check: {rep['device'].get('name', rep['device']['type'])}")
    for c in ("what", "precision", "graph", "median ms", "fps / img/s"):
        t.add_column(c)
    for e in rep["latency"]:
        if "error" not in e:
            t.add_row(f"{e['model']} net", e["precision"], "yes" if e["cuda_graph"] else "no", fmt(e["median_ms"], 3),
                      fmt(e["fps"], 0) + (f" / {fmt(e['throughput_ips'], 0)}" if e.get("throughput_ips") else ""))
    for e in rep["runner"]:
        if "error" not in e:
            t.add_row("tan tracker e2e", e["precision"], "yes" if e["cuda_graph"] else "no",
                      fmt(e["e2e_median_ms"], 3), fmt(e["e2e_fps"], 0))
    for p, s in rep["parity"].items():
        t.add_row("parity vs CPU", p, "", s.get("status", "?"),
                  f"Dice {fmt(s.get('open_dice_mean'), 5)} / {fmt(s.get('closed_dice_mean'), 5)}")
    Console(width=120).print(t)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python scripts/gpu_check.py", description=__doc__.splitlines()[0])
    ap.add_argument("--weights", required=True, help="TAN .safetensors (or 'default' / a registered name)")
    ap.add_argument("--out", required=True, help="folder for gpu_check.json and gpu_check.md")
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    ap.add_argument("--runs", type=int, default=200, help="timed runs per latency figure (>= 200 on GPU)")
    ap.add_argument("--frames", type=int, default=300, help="tracker frames for end-to-end fps")
    ap.add_argument("--batch", type=int, default=16, help="batch for the throughput figure (1 = skip)")
    ap.add_argument("--baselines", default="unet,pspnet", help="random-init baselines, speed only ('' = none)")
    ap.add_argument("--clip", default=None, help="npz/video clip (default: the phantom)")
    ap.add_argument("--clip-frames", type=int, default=40)
    args = ap.parse_args(argv)
    if args.runs < 1 or args.frames < 1:
        ap.error("--runs and --frames must be >= 1")
    rep = run_check(args)
    out = Path(args.out)
    from edge_tan.runtime.atomic import write_text

    from edge_tan.bench.report import to_json
    write_text(out / "gpu_check.json", to_json(rep) + "\n")
    write_text(out / "gpu_check.md", markdown(rep))
    print_summary(rep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
