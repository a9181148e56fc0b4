"""`edge-tan parity`: task-level parity of every backend against the torch fp32 reference.

Tensor-level tools (Polygraphy, ORT/OpenVINO accuracy checkers) stop at "logits differ by 1e-5";
what matters here is whether the *tracker* still behaves the same, and tracking feeds its own output
back (landmarks -> next window), so small differences can grow. Two views:

- open loop: every backend analyses exactly the windows the reference tracker saw (same frames, same
  affines), so differences are the network's alone: window-mask Dice, landmark px, view agreement,
  raw logit |Δ| (diagnostic);
- closed loop: every backend tracks the whole clip on its own; per-frame full-resolution Dice and
  landmark px vs the reference, and the clinical outputs (ED/ES frames, EF).

INT8 is not expected to match fp32 bit-for-bit: it is judged by its Dice drop against ground truth
(when the clip has labels) plus a loose closed-loop agreement. Backends that are not installed are
reported as such, never as passed, and only fail the run when asked for with a trailing "!"
(`--backends onnxruntime,tensorrt!`: missing or unsupported at that precision both fail). A run in
which no backend could be compared with the reference exits 1: parity on nothing is not a pass.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from edge_tan.runtime.errors import BackendUnavailable, EdgeTanError, UsageError, one_line
from edge_tan.metrics import dice
from edge_tan.runtime.runner import Runner, close_quietly
from edge_tan.runtime.tracker import Tracker

from .accuracy import clinical, compare_clinical, compare_closed, gt_accuracy
from .native_row import NATIVE
from .parity_checks import Tolerance, judge, tolerances_for
from .source import has_labels, load_clips

PRECISIONS = ("fp32", "fp16", "int8", "bf16")
REFERENCE = "torch"


# ---- runner wrappers ------------------------------------------------------------------------
class RecordingRunner(Runner):
    """Passes calls through and keeps the last raw outputs (for logit diffs)."""

    def __init__(self, inner: Runner):
        super().__init__(inner.metadata)
        self.inner, self.backend, self.last = inner, inner.backend, None

    def _infer(self, x):
        self.last = self.inner.infer(x)
        return self.last

    def describe(self):
        return self.inner.describe()

    def close(self):
        self.inner.close()


class PerturbedRunner(Runner):
    """Adds seeded Gaussian noise to a backend's outputs: a deliberately broken backend for tests
    (and for checking that a parity setup can fail at all)."""

    def __init__(self, inner: Runner, sigma: float = 1.0, seed: int = 0, outputs=("seg", "landmarks")):
        super().__init__(inner.metadata)
        self.inner, self.backend, self.sigma, self.outputs = inner, inner.backend, float(sigma), tuple(outputs)
        self.rng = np.random.default_rng(seed)

    def _infer(self, x):
        out = dict(self.inner.infer(x))
        for k in self.outputs:
            if k in out:
                out[k] = (out[k] + self.rng.normal(0.0, self.sigma, out[k].shape)).astype(np.float32)
        return out

    def close(self):
        self.inner.close()


# ---- the comparisons ------------------------------------------------------------------------
@dataclass
class RefClip:
    """What the reference did on one clip: its closed-loop results and every pass it made."""
    seq: object
    results: list
    passes: list      # (gray, M, _Pass, raw outputs)
    clinical: dict
    gt: dict


def run_reference(runner: Runner, seq) -> RefClip:
    rec = RecordingRunner(runner)
    passes = []

    def logged(gray, M, p):
        passes.append((np.array(gray, copy=True), np.array(M, copy=True), p,
                       {k: v.copy() for k, v in rec.last.items()}))

    results = Tracker(rec, on_pass=logged).track(list(seq.frames))
    return RefClip(seq, results, passes, clinical(results, seq.spacing_mm, seq.fps), gt_accuracy(results, seq))


def open_loop(runner: Runner, ref: RefClip, view_margin: float = 1e-3) -> dict:
    """Feed the backend the reference's exact windows; per-pass agreement."""
    rec = RecordingRunner(runner)
    tracker = Tracker(rec)
    d, lm, vw, seg_max, seg_mean, head_max = [], [], [], [], [], []
    for gray, M, p_ref, raw_ref in ref.passes:
        p, _ = tracker.analyse(gray, M)
        d.append(dice(p.win_mask, p_ref.win_mask))
        if p.lm_win is not None and p_ref.lm_win is not None:
            lm.append(float(np.max(np.linalg.norm(p.lm_win - p_ref.lm_win, axis=1))))
        if p_ref.view_idx >= 0 and abs(p_ref.view_prob - 0.5) > view_margin:  # decisive frames only
            vw.append(p.view_idx == p_ref.view_idx)
        diff = np.abs(rec.last["seg"] - raw_ref["seg"])
        seg_max.append(float(diff.max()))
        seg_mean.append(float(diff.mean()))
        for k in ("landmarks", "view"):
            if k in raw_ref and k in rec.last:
                head_max.append(float(np.abs(rec.last[k] - raw_ref[k]).max()))
    return {"passes": len(d), "dice": d, "lm_px": lm, "view": vw, "seg_max": seg_max, "seg_mean": seg_mean,
            "head_max": head_max}


def closed_loop(runner: Runner, ref: RefClip) -> dict:
    return compare_run(Tracker(runner).track(list(ref.seq.frames)), ref)


def compare_run(results: list, ref: RefClip) -> dict:
    """A closed-loop run of the clip (any tracker's FrameResults) against the reference's."""
    seq = ref.seq
    return {"compare": compare_closed(ref.results, results),
            "clinical": compare_clinical(ref.clinical, clinical(results, seq.spacing_mm, seq.fps)),
            "gt": gt_accuracy(results, seq)}


def _mean(v):
    v = [x for x in v if x is not None and math.isfinite(x)]
    return float(np.mean(v)) if v else None


def _max(v):
    v = [x for x in v if x is not None]
    return float(max(v)) if v else None


def _min(v):
    v = [x for x in v if x is not None]
    return float(min(v)) if v else None


def summarise(opens: list[dict], closeds: list[dict], refs: list[RefClip]) -> dict:
    """Pool per-clip numbers into the values the checks judge."""
    od = [x for o in opens for x in o["dice"]]
    olm = [x for o in opens for x in o["lm_px"]]
    ov = [x for o in opens for x in o["view"]]
    s = {
        "open_dice_mean": _mean(od), "open_dice_min": min(od) if od else None,
        "open_lm_px_max": _max(olm), "open_lm_px_mean": _mean(olm),
        "view_agree": float(np.mean(ov)) if ov else None, "view_decisive_passes": len(ov),
        "logit_seg_max_abs": _max([x for o in opens for x in o["seg_max"]]),
        "logit_seg_mean_abs": _mean([x for o in opens for x in o["seg_mean"]]),
        "logit_heads_max_abs": _max([x for o in opens for x in o["head_max"]]),
        "open_passes": sum(o["passes"] for o in opens),
        "closed_dice_mean": _mean([c["compare"]["dice_mean"] for c in closeds]),
        "closed_dice_min": _min([c["compare"]["dice_min"] for c in closeds]),
        "closed_lm_px_mean": _mean([c["compare"]["landmark_px_mean"] for c in closeds]),
        "closed_lm_px_max": _max([c["compare"]["landmark_px_max"] for c in closeds]),
        "lock_mismatch_frames": sum(c["compare"].get("landmark_lock_mismatch", 0) for c in closeds),
        "state_agree": _mean([c["compare"]["state_agree"] for c in closeds]),
        "ed_es_offset": _max([max(x for x in (c["clinical"]["ed_offset"], c["clinical"]["es_offset"]) if x is not None)
                              for c in closeds if any(x is not None for x in (c["clinical"]["ed_offset"],
                                                                              c["clinical"]["es_offset"]))]),
        "ef_abs_diff": _max([c["clinical"]["ef_abs_diff"] for c in closeds]),
    }
    labelled = [(r.gt["dice"], c["gt"]["dice"]) for r, c in zip(refs, closeds)
                if r.gt.get("dice") is not None and c["gt"].get("dice") is not None]
    if labelled:
        s["gt_dice_ref"] = float(np.mean([a for a, _ in labelled]))
        s["gt_dice"] = float(np.mean([b for _, b in labelled]))
        s["gt_dice_drop_points"] = 100.0 * (s["gt_dice_ref"] - s["gt_dice"])
    else:
        s["gt_dice_ref"] = s["gt_dice"] = s["gt_dice_drop_points"] = None
    return s


# ---- orchestration --------------------------------------------------------------------------
@dataclass
class Request:
    backend: str
    precision: str
    required: bool = False


def parse_requests(backends: str, precision: str) -> list[Request]:
    from edge_tan.runtime.registry import canonical
    precs = [p.strip().lower() for p in str(precision).split(",") if p.strip()]
    bad = [p for p in precs if p not in PRECISIONS]
    if bad or not precs:
        raise UsageError(f"--precision must be a comma list of {', '.join(PRECISIONS)}, got {precision!r}")
    names = [b.strip() for b in str(backends).split(",") if b.strip()]
    if not names:
        raise UsageError("--backends is empty")
    out, seen = [], set()
    for n in names:
        req = n.endswith("!")
        try:
            key = NATIVE if n.rstrip("!").lower() == NATIVE else canonical(n.rstrip("!"))
        except EdgeTanError as e:
            raise UsageError(f"{e} (or {NATIVE}: the C++ runtime on the OpenVINO IR)") from None
        for p in (["fp32"] if key == REFERENCE else precs):   # the reference is fp32 by definition
            if (key, p) not in seen:
                seen.add((key, p))
                out.append(Request(key, p, req))
    return out


def wrong_model(md, ref_md) -> str:
    """Why the artifact is not the reference's model ('' when it is): the source-weights hash every
    artifact carries must equal the reference's (its seal, checked on open, vouches for the bytes)."""
    a, r = md.weights_sha256 or "", ref_md.weights_sha256 or ""
    if not r or a == r:
        return ""
    if not a:
        return f"wrong model: the artifact names no source weights; the reference is {r[:12]}"
    return f"wrong model: the artifact was made from weights {a[:12]}, the reference is {r[:12]}"


def _open_for(rq: Request, open_fn: Callable[[str, str], Runner], row: dict) -> Runner | None:
    """The runner for one request, or None with the row's status and reason saying why there is none
    (unavailable and unsupported are never failures; an error is)."""
    from edge_tan.runtime.registry import available

    ok, why = available(rq.backend)
    if not ok:
        row.update(status="unavailable", reason=why)
        return None
    try:
        return open_fn(rq.backend, rq.precision)
    except UsageError as e:   # e.g. the onnx target is fp32-only: not a failure of the backend
        row.update(status="unsupported", reason=str(e))
    except BackendUnavailable as e:   # package, device or driver absent here: never a failure
        row.update(status="unavailable", reason=str(e))
    except EdgeTanError as e:
        row.update(status="error", reason=str(e))
    except Exception as e:  # a backend crash must not take the whole report with it
        row.update(status="error", reason=one_line(e))
    return None


def _compare(runner: Runner, refs: list, ref_md, tolerance: Tolerance, row: dict) -> None:
    """Open- and closed-loop comparison of one opened runner with the reference, judged into `row`."""
    md = runner.metadata
    if md.window != ref_md.window or md.warp_mode != ref_md.warp_mode or \
            not np.allclose(md.template_array, ref_md.template_array):
        raise EdgeTanError(f"{row['backend']} artifact metadata (window/warp/template) differs from the reference")
    row["describe"] = _describe(runner)
    wrong = wrong_model(md, ref_md)
    if wrong:   # another model's artifact (in a cache slot, say): no tolerance makes that a pass
        row.update(status="fail", reason=wrong, source_weights=md.weights_sha256 or None)
        return
    _judge_row(row, summarise([open_loop(runner, r) for r in refs], [closed_loop(runner, r) for r in refs], refs),
               tolerance)


def _judge_row(row: dict, s: dict, tolerance: Tolerance) -> None:
    row["summary"], row["checks"] = s, judge(s, tolerance)
    fails = [c["label"] for c in row["checks"].values() if c["pass"] is False]
    row.update(status="fail" if fails else "pass", reason=("out of tolerance: " + ", ".join(fails)) if fails else "")


def _request_row(rq: Request, refs: list, reference: Runner, open_fn, tolerances: dict, wrap) -> dict:
    """One backend x precision row of the report."""
    row = {"backend": rq.backend, "precision": rq.precision, "required": rq.required, "status": "",
           "reason": "", "checks": {}, "summary": {}, "describe": {}}
    if rq.backend == REFERENCE:
        if rq.precision == "fp32":
            row.update(status="reference", reason="torch fp32 is the reference", describe=_describe(reference),
                       summary={"gt_dice_ref": _mean([r.gt.get("dice") for r in refs])})
        else:
            row.update(status="unavailable", reason="the torch reference runs fp32 only")
        return row
    if rq.backend == NATIVE:
        return _native_row(rq, refs, reference, open_fn, tolerances, row)
    runner = _open_for(rq, open_fn, row)
    if runner is None:
        return row
    try:
        if wrap is not None:
            runner = wrap(rq.backend, rq.precision, runner)
        _compare(runner, refs, reference.metadata, tolerances[rq.precision], row)
    except EdgeTanError as e:
        row.update(status="error", reason=str(e))
    except Exception as e:
        row.update(status="error", reason=one_line(e))
    finally:
        close_quietly(runner)
    return row


def _native_row(rq: Request, refs: list, reference: Runner, open_fn, tolerances: dict, row: dict) -> dict:
    """The C++ tracker on the OpenVINO IR of this precision (the one the openvino row opens), closed loop
    only (bench/native_row.py)."""
    from .native_row import find_cli, track_native, unavailable_reason
    cli = find_cli()
    if cli is None:
        row.update(status="unavailable", reason=unavailable_reason())
        return row
    runner = _open_for(Request("openvino", rq.precision), open_fn, row)
    if runner is None:
        return row
    try:
        md, ir = runner.metadata, Path(runner.origin.path)
        row["describe"] = {"backend": NATIVE, "precision": rq.precision, "cli": str(cli), "artifact": str(ir)}
        wrong = wrong_model(md, reference.metadata)
        if wrong:
            row.update(status="fail", reason=wrong, source_weights=md.weights_sha256 or None)
            return row
        closeds = [compare_run(track_native(cli, ir, r.seq.frames), r) for r in refs]
        _judge_row(row, summarise([], closeds, refs), tolerances[rq.precision])
    except EdgeTanError as e:
        row.update(status="error", reason=str(e))
    except Exception as e:
        row.update(status="error", reason=one_line(e))
    finally:
        close_quietly(runner)
    return row


def run_parity(clips: list, requests: list[Request], open_fn: Callable[[str, str], Runner],
               reference: Runner, tolerances: dict[str, Tolerance],
               wrap: Callable[[str, str, Runner], Runner] | None = None, progress=None) -> dict:
    """The parity report as a dict. `open_fn(backend, precision)` opens a runner (EdgeTanError when it
    cannot); `wrap` may replace each opened runner (tests inject a perturbation there)."""
    refs = [run_reference(reference, s) for s in clips]
    rows = []
    for rq in requests:
        if progress:
            progress(f"{rq.backend} {rq.precision}")
        rows.append(_request_row(rq, refs, reference, open_fn, tolerances, wrap))
    failed = [r for r in rows if r["status"] in ("fail", "error") or
              (r["status"] in ("unavailable", "unsupported") and r["required"])]
    compared = [r for r in rows if r["status"] in ("pass", "fail")]
    # parity on nothing is not a pass: with no backend compared against the reference, exit 1
    passed = bool(compared) and not failed
    return {"rows": rows, "passed": passed, "exit_code": 0 if passed else 1, "compared": len(compared),
            "clips": [{"name": r.seq.name, "frames": r.seq.n_frames, "labelled": has_labels(r.seq),
                       "reference_passes": len(r.passes), "reference_gt": r.gt, "reference_clinical": r.clinical,
                       "reference_tracked": float(np.mean([x.state != "lost" for x in r.results])) if r.results else 0.0}
                      for r in refs],
            "reference": _describe(reference),
            "tolerances": {p: asdict(t) for p, t in tolerances.items()}}


def _describe(runner: Runner) -> dict:
    try:
        d = dict(runner.describe())
    except Exception:
        d = {"backend": runner.backend}
    return {k: (v if isinstance(v, (str, int, float, bool, type(None), list)) else str(v)) for k, v in d.items()}


PERTURB_ENV = "EDGE_TAN_PARITY_PERTURB"


def perturbation_from_env() -> Callable[[str, str, Runner], Runner] | None:
    """Self-test hook: EDGE_TAN_PARITY_PERTURB="openvino=0.5" adds noise (sigma) to that backend's
    outputs, to prove a parity setup can fail (CI smoke tests of the harness itself)."""
    import os
    spec = os.environ.get(PERTURB_ENV, "").strip()
    if not spec:
        return None
    try:
        target, sigma = spec.split("=", 1)
        sigma_f = float(sigma)
    except ValueError:
        raise UsageError(f"{PERTURB_ENV} must look like 'openvino=0.5', got {spec!r}") from None
    from edge_tan.runtime.registry import canonical
    key = canonical(target)
    return lambda b, p, r: PerturbedRunner(r, sigma_f) if b == key else r


def open_reference(spec: str) -> Runner:
    """The torch fp32 reference for a model spec (weights, 'default' or a registered name)."""
    from edge_tan.targets.opener import open_model
    return open_model(spec, REFERENCE, "fp32")


def run_parity_cli(source, backends, precision, model, json_out, dice_tol, lm_tol, max_drop, limit,
                   wrap: Callable[[str, str, Runner], Runner] | None = None, quiet: bool = False) -> int:
    """`edge-tan parity`: 0 all compared backends pass, 1 a real failure, 2 usage error."""
    from rich.console import Console

    from .machine import machine_info
    from .report import parity_reasons, parity_table, write_json

    console = Console(width=max(170, Console().width))
    try:
        requests = parse_requests(backends, precision)
        if wrap is None:
            wrap = perturbation_from_env()
        tols = {p: tolerances_for(p, dice_tol, lm_tol, max_drop) for p in {r.precision for r in requests}}
        spec = str(model or "default")
        from edge_tan.runtime import registry
        if any(b.target and b.suffix == Path(spec).suffix.lower() for b in registry.backends().values()):
            raise UsageError(f"parity needs the torch reference: give weights (.safetensors) or a registered "
                             f"model name, not a {Path(spec).suffix} artifact")
        clips, desc = load_clips(source, limit)
        from edge_tan.targets.opener import open_model
    except UsageError as e:
        console.print(f"edge-tan: error: {e}", markup=False, highlight=False)
        return 2
    from .source import calibration_dir

    def open_fn(b, p):
        return open_model(spec, b, p, calib=calibration_dir(source) if p == "int8" else None)

    reference = open_reference(spec)
    try:
        if reference.metadata.warp_mode != "affine" and not quiet:
            console.print(f"note: model warp mode is {reference.metadata.warp_mode!r}", markup=False)
        status = console.status("parity: reference") if not quiet else None
        if status:
            status.start()
        try:
            report = run_parity(clips, requests, open_fn, reference, tols,
                                wrap=wrap, progress=(lambda s: status.update(f"parity: {s}")) if status else None)
        finally:
            if status:
                status.stop()
    finally:
        reference.close()
    report.update(source=desc, model=spec, machine=machine_info())
    if not quiet:
        console.print(parity_table(report))
        for line in parity_reasons(report):
            console.print(line, markup=False, highlight=False)
        tracked = [c["reference_tracked"] for c in report["clips"]]
        if tracked and float(np.mean(tracked)) < 0.5:
            console.print(f"note: the reference tracker kept the LV in only {100 * float(np.mean(tracked)):.0f}% of "
                          "frames (untrained model?): closed-loop and clinical checks have little to compare",
                          markup=False, highlight=False)
        if not report["compared"]:
            console.print("FAIL: no backend was compared with the reference (none available or supported "
                          "here): nothing was checked", markup=False, highlight=False)
    if json_out:
        write_json(json_out, report)
    return int(report["exit_code"])
