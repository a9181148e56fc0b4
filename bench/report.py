"""Rendering of parity and bench reports: rich tables for the terminal, Markdown, strict JSON.

Status symbols are the same everywhere: ✅ ran/passed, ❎ ran but accuracy out of tolerance,
❌ failed (with its one-line reason), — unavailable (with the reason). An unavailable backend is
never drawn as passed.
"""

from __future__ import annotations

import json
import math
from functools import partial
from pathlib import Path

from edge_tan import numfmt
from edge_tan.runtime.atomic import write_text

SYMBOL = {"pass": "✅", "ok": "✅", "reference": "★", "fail": "❌", "error": "❌", "failed": "❌",
          "inaccurate": "❎", "unavailable": "—", "unsupported": "—"}


# ---- JSON -----------------------------------------------------------------------------------
def _clean(x):
    """JSON-safe copy: NaN/inf -> None, numpy scalars -> Python, tuples -> lists, paths -> str."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, Path):
        return str(x)
    if hasattr(x, "item") and not isinstance(x, (str, bytes)):
        try:
            x = x.item()
        except (ValueError, AttributeError):
            return str(x)
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, (str, int, bool)) or x is None:
        return x
    return str(x)


def to_json(data: dict) -> str:
    return json.dumps(_clean(data), indent=1, allow_nan=False, ensure_ascii=False)


def write_json(path, data: dict) -> None:
    write_text(path, to_json(data) + "\n")


# ---- formatting helpers ---------------------------------------------------------------------
fmt = partial(numfmt.fmt, sci=True)   # report style: e-notation for tiny/huge values, ints as they are


def _check_cell(c: dict) -> str:
    v = c.get("value")
    nd = 4 if "Dice" in c["label"] and "drop" not in c["label"] else 3
    s = fmt(v, nd)
    if c.get("pass") is True:
        return f"✅ {s}"
    if c.get("pass") is False:
        return f"❌ {s} (need {c['op']} {fmt(c['threshold'], nd)})"
    return f"· {s}" if v is not None else "·"


# ---- parity ---------------------------------------------------------------------------------
def parity_columns(report: dict) -> list[tuple[str, str]]:
    from .parity_checks import CHECKS
    return [(name, label) for name, _, _, _, label in CHECKS]


def parity_rows(report: dict) -> list[list[str]]:
    cols = parity_columns(report)
    out = []
    for r in report["rows"]:
        st = r["status"]
        head = [r["backend"], r["precision"], f"{SYMBOL.get(st, '?')} {st}"]
        if st in ("pass", "fail"):
            cells = [_check_cell(r["checks"][n]) for n, _ in cols]
        else:
            cells = ["see below" if r.get("reason") and st != "reference" else ""] + [""] * (len(cols) - 1)
        out.append(head + cells)
    return out


def parity_reasons(report: dict) -> list[str]:
    """Why a row was not compared (or failed), one line each."""
    return [f"{SYMBOL.get(r['status'], '?')} {r['backend']} {r['precision']}: {r['reason']}"
            for r in report["rows"] if r["status"] not in ("reference",) and r.get("reason")]


def parity_table(report: dict):
    from rich.table import Table

    verdict = "PASS" if report["passed"] else "FAIL"
    t = Table(title=f"edge-tan parity vs torch fp32 — {verdict}", caption=_parity_caption(report),
              show_lines=False)
    t.add_column("backend", no_wrap=True)
    t.add_column("precision", no_wrap=True)
    t.add_column("status", no_wrap=True)
    for _, label in parity_columns(report):
        t.add_column(label, overflow="fold")
    for row in parity_rows(report):
        t.add_row(*row)
    return t


def _parity_caption(report: dict) -> str:
    clips = report.get("clips", [])
    n = sum(c["frames"] for c in clips)
    passes = sum(c["reference_passes"] for c in clips)
    src = report.get("source", "")
    return (f"{src}; {len(clips)} clip(s), {n} frames, {passes} reference passes. ✅ within tolerance, ❌ out of "
            "tolerance, · reported only, — unavailable (never counted as passed).")


def parity_markdown(report: dict) -> str:
    cols = parity_columns(report)
    head = ["backend", "precision", "status"] + [label for _, label in cols]
    lines = [f"# edge-tan parity — {'PASS' if report['passed'] else 'FAIL'}", "", _parity_caption(report), "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in parity_rows(report):
        lines.append("| " + " | ".join(c.replace("|", "/") for c in row) + " |")
    reasons = parity_reasons(report)
    if reasons:
        lines += [""] + [f"- {x}" for x in reasons]
    return "\n".join(lines) + "\n"


# ---- bench ----------------------------------------------------------------------------------
BENCH_COLUMNS = ("model", "backend", "prec", "status", "params M", "GMAC", "size MB", "build",
                 "latency ms med/p95/p99", "fps", "e2e fps", "passes/frame", "frames % det/trk/re/lost", "non-net %", "tput fps", "peak MB", "accuracy",
                 "TAN speed-up")


def _acc_cell(r: dict) -> str:
    a = r.get("accuracy") or {}
    if not r.get("trained", False):
        return "untrained (speed only)"
    if a.get("dice") is not None:
        lm = f", lm {a['landmark_px']:.1f}px" if a.get("landmark_px") is not None else ""
        return f"Dice {100 * a['dice']:.2f}{lm}"
    if a.get("source") == "parity reference (no labels)":
        return "no labels: parity reference"
    if a.get("parity_dice") is not None:
        return f"parity Dice {a['parity_dice']:.4f} vs {a.get('parity_ref', 'ref')}"
    return "n/a"


def _speedup_cell(r: dict) -> str:
    sp = r.get("speedup") or {}
    parts = []
    for base, v in sp.items():
        e2e, mo = v.get("e2e"), v.get("model")
        best = e2e if e2e is not None else mo
        if best is not None:
            parts.append(f"×{best:.1f} vs {base}")
    return "; ".join(parts)


def _states_cell(share: dict | None) -> str:
    """Share of tracked frames per state: re-detect frames cost three network passes, not one."""
    if not share or any(share.get(k) is None for k in ("detect", "track", "redetect", "lost")):
        return "n/a"
    return "/".join(f"{100 * share[k]:.0f}" for k in ("detect", "track", "redetect", "lost"))


def bench_row_cells(r: dict) -> list[str]:
    st = r["status"]
    sym = SYMBOL.get(st, "?")
    base = [r["model"], r["backend"], r["precision"]]
    if st in ("failed", "unavailable"):
        return base + [f"{sym} {st}"] + [""] * (len(BENCH_COLUMNS) - 4)
    lat = r.get("latency_ms") or {}
    e2e = r.get("e2e") or {}
    build = r.get("build") or ""
    if build == "built" and r.get("build_s") is not None:
        build = f"{r['build_s']:.1f} s"
    bounded = "*" if r.get("bounded") else ""
    return base + [
        f"{sym} {st}",
        fmt(r["params"] / 1e6, 2) if r.get("params") else "n/a",
        fmt(r["macs"] / 1e9, 3) if r.get("macs") else "n/a",
        fmt(r.get("artifact_mb"), 1),
        build,
        "/".join(fmt(lat.get(k), 2) for k in ("median", "p95", "p99")),
        fmt(lat.get("fps"), 1) + bounded,
        fmt(e2e.get("fps"), 1) + bounded,
        f"{e2e['passes_per_frame']:.2f}" if e2e.get("passes_per_frame") is not None else "n/a",
        _states_cell(e2e.get("state_share")),
        f"{100 * e2e['non_network_share']:.1f}" if e2e.get("non_network_share") is not None else "n/a",
        fmt(r.get("throughput_fps"), 1) if r.get("throughput_fps") else "",
        fmt(r.get("peak_rss_mb"), 0),
        _acc_cell(r),
        _speedup_cell(r),
    ]


def bench_reasons(report: dict) -> list[str]:
    """One line per row that did not simply run: why it failed, is unavailable, or is out of tolerance."""
    return [f"{SYMBOL.get(r['status'], '?')} {r['model']} {r['backend']} {r['precision']}: {r['reason']}"
            for r in report["rows"] if r["status"] in ("failed", "unavailable", "inaccurate") and r.get("reason")]


def bench_table(report: dict):
    from rich.table import Table

    t = Table(title="edge-tan bench", caption=report.get("machine_line", ""))
    for c in BENCH_COLUMNS:
        t.add_column(c, justify="right" if c not in ("model", "backend", "prec", "status", "accuracy", "build",
                                                        "TAN speed-up") else "left", overflow="fold",
                     no_wrap=c in ("backend", "prec", "status"))
    for r in report["rows"]:
        t.add_row(*bench_row_cells(r))
    return t


def bench_markdown(report: dict) -> str:
    lines = ["# edge-tan bench", "", f"Machine: {report.get('machine_line', '')}", "",
             f"Source: {report.get('source', '')}", "",
             "| " + " | ".join(BENCH_COLUMNS) + " |", "|" + "---|" * len(BENCH_COLUMNS)]
    for r in report["rows"]:
        lines.append("| " + " | ".join(c.replace("|", "/") for c in bench_row_cells(r)) + " |")
    reasons = bench_reasons(report) + [
        f"{r['model']} {r['backend']} {r['precision']}: first pass not used: " + ", ".join(f"{k} ({n})" for k, n in top)
        for r in report["rows"] for top in [(r.get("e2e") or {}).get("top_reasons")] if top]
    if reasons:
        lines += [""] + [f"- {x}" for x in reasons]
    lines += ["", "Legend: ✅ ran, ❎ ran but accuracy out of tolerance, ❌ failed, — unavailable. "
              "Latency is model-only (batch 1, one window); e2e fps is the whole tracker per frame "
              "(warp + infer + unwarp + contour; detect/re-detect frames cost extra network passes: passes/frame; "
              "frames % det/trk/re/lost: share of those frames per tracker state). "
              "* = bounded run (few timed runs, see notes)."]
    from .speed import speed_markdown
    sp = speed_markdown(report.get("speed") or {})
    if sp:
        lines += [""] + sp
    notes = report.get("notes") or []
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    fig6 = report.get("paper_fig6")
    if fig6:
        lines += ["", "## Paper Fig. 6 (Tesla P40 GPU / Xeon E5-2680 v4 CPU), for reference", "",
                  "| model | params MB | GPU ms | CPU ms |", "|---|---|---|---|"]
        for name, v in fig6.items():
            lines.append(f"| {name} | {v['params_mb']} | {v['gpu_ms']} | {v['cpu_ms']} |")
    return "\n".join(lines) + "\n"
