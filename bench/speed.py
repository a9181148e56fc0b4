"""The speed summary of one bench run: per TAN row, the network alone vs the whole tracker, and the
ratios issue 23 set as targets (ratios within one run hold across machines; absolute figures do not).

- network alone fps = 1000 / model-only median ms (batch 1, one window, the bench's own timer);
- end-to-end fps = tracker frames per second of total time (warp, network, unwarp, contour, gates): the
  median over the row's pairs (below) where it has them, else its one tracker run;
- e2e ÷ network = how much of the network's own throughput the tracker keeps: both as runs per second
  of total time (1000 / mean ms), so an occasional slow call counts alike on both sides (the median-
  based network fps of the table is higher than its throughput whenever calls vary; that ratio is
  kept beside it as e2e_vs_network_median: median frame vs median network call);
- paired e2e ÷ network (rows of benches since 2026-12-08): the same ratio timed in alternating pairs
  (network alone, then the tracker, `PAIRED_ROUNDS` times): median and range over the pairs. Where a
  row has it, the INT8 target is judged on it (a drifting machine moves both sides of a pair alike);
- floor ÷ network (rows of benches since 2026-12-08, same pairs): the method's least per-frame work
  (grey + normalisation, the window cut, the network; `bench.run.floor_loop`) over the network alone:
  the most the Python tracker can keep on that machine, printed beside the INT8 target;
- vs fp32 = end-to-end fps over the same backend's fp32 row;
- native ÷ its network = the C++ tracker's end-to-end fps over the same runtime's network alone
  (`edge-tan-native track --time-network`: back-to-back calls on the last window after the clip).
"""

from __future__ import annotations

from .latency import median_range

# issue 23's targets: (name, what is compared, the minimum ratio)
TARGETS = (("bf16_vs_fp32_e2e", "BF16 end-to-end fps ÷ FP32's", 1.4),
           ("int8_e2e_vs_network", "INT8 end-to-end fps ÷ the INT8 network's own throughput", 0.92),
           # issue 22: the C++ tracker keeps >= 90 % of the network's own speed, at each precision it runs
           # (its own network alone, timed by the same runtime in the same run; older records: the
           # Python runner's figure)
           ("native_e2e_vs_network", "native end-to-end fps ÷ the network's own throughput (worst precision)", 0.9))


def _ratio(a, b):
    return a / b if a and b else None


def _fps(ms):
    return 1000.0 / ms if ms else None


def _row_e2e(r: dict | None) -> float | None:
    """A bench row's end-to-end fps: its pairs' median where it has pairs, else its one tracker run (the
    first tracker run of a row follows compiling and timing the network; on a shared VM it read below
    all five pairs of its BF16 row, moving BF16 ÷ FP32 from x1.50 to x1.37)."""
    paired = [x.get("e2e_fps") or None for x in ((r or {}).get("e2e_paired") or {}).get("rounds") or []]
    med = median_range(paired)[0]
    return med if med is not None else ((r or {}).get("e2e") or {}).get("fps")


def speed_summary(rows: list[dict], model: str = "tan") -> dict:
    """{"rows": [...], "targets": [...]} for `model`'s rows that ran (ok or inaccurate)."""
    ran = [r for r in rows if r.get("model") == model and r.get("status") in ("ok", "inaccurate")]
    out = []
    for r in ran:
        single = (r.get("e2e") or {}).get("fps")
        e2e = _row_e2e(r)
        fp32 = next((x for x in ran if x["backend"] == r["backend"] and x["precision"] == "fp32"), None)
        out.append({"backend": r["backend"], "precision": r["precision"], "status": r["status"],
                    "inference_precision": (r.get("describe") or {}).get("inference_precision"),
                    "model_ms": (r.get("latency_ms") or {}).get("median"),
                    "model_p95_ms": (r.get("latency_ms") or {}).get("p95"),
                    "network_fps": r.get("fps"), "e2e_fps": e2e, "e2e_fps_single": single,
                    "network_fps_mean": r.get("network_fps_mean"),
                    "e2e_vs_network": _ratio(single, r.get("network_fps_mean") or r.get("fps")),
                    "e2e_vs_network_median": _ratio(_fps((r.get("e2e") or {}).get("median_ms")), r.get("fps")),
                    "e2e_vs_network_paired": (r.get("e2e_paired") or {}).get("median"),
                    "e2e_vs_network_paired_range": (r.get("e2e_paired") or {}).get("range"),
                    "e2e_paired_rounds": (r.get("e2e_paired") or {}).get("n"),
                    "floor_vs_network_paired": (r.get("e2e_paired") or {}).get("floor_median"),
                    "floor_vs_network_paired_range": (r.get("e2e_paired") or {}).get("floor_range"),
                    "non_network_share": (r.get("e2e") or {}).get("non_network_share"),
                    "e2e_vs_fp32": _ratio(e2e, _row_e2e(fp32)) if fp32 is not r else 1.0,
                    "native_e2e_fps": (r.get("native_e2e") or {}).get("fps"),
                    "native_vs_network": (r.get("native_e2e") or {}).get("vs_network"),
                    "native_network_fps": ((r.get("native_e2e") or {}).get("network") or {}).get("fps"),
                    "native_vs_own_network": (r.get("native_e2e") or {}).get("vs_own_network"),
                    "native_vs_own_network_range": (r.get("native_e2e") or {}).get("vs_own_network_range"),
                    "native_repeats": (r.get("native_e2e") or {}).get("repeats"),
                    "native_busy": bool(((r.get("native_e2e") or {}).get("load") or {}).get("busy")),
                    "dice": (r.get("accuracy") or {}).get("dice"),
                    "busy": any(l.get("busy") for l in r.get("load") or [])})
    by = {(x["backend"], x["precision"]): x for x in out}
    targets = []
    for name, what, need in TARGETS:
        got, busy, floor = None, False, None
        for (b, p), x in by.items():
            if name == "bf16_vs_fp32_e2e" and p == "bf16":
                got, busy = (b, x["e2e_vs_fp32"]), x["busy"] or (by.get((b, "fp32")) or {}).get("busy", False)
            elif name == "int8_e2e_vs_network" and p == "int8" and b == "openvino":
                paired = x["e2e_vs_network_paired"]
                got, busy = (b, paired if paired is not None else x["e2e_vs_network"]), x["busy"]
                floor = x["floor_vs_network_paired"]
            elif name == "native_e2e_vs_network" and x["native_vs_network"] is not None:
                v = x["native_vs_own_network"] if x["native_vs_own_network"] is not None else x["native_vs_network"]
                if got is None or v < got[1]:
                    own = x["native_vs_own_network"] is not None
                    got, busy = (f"native {p}", v), x["native_busy"] or (not own and x["busy"])
        # a ratio timed while other processes took the CPU is reported, never judged
        targets.append({"name": name, "what": what, "min": need, "backend": got[0] if got else None,
                        "value": got[1] if got else None, "busy": busy, "floor": floor,
                        "met": (got[1] >= need) if got and got[1] is not None and not busy else None})
    return {"rows": out, "targets": targets}


def target_value(t: dict) -> str:
    """A target's ratio, with a third decimal where two would read as the threshold itself (x0.898
    against x0.90 is not met, and must not read x0.90)."""
    v = t["value"]
    return f"{v:.3f}" if round(v, 2) == round(t["min"], 2) and v != t["min"] else f"{v:.2f}"


def speed_lines(summary: dict) -> list[str]:
    """Plain lines for the terminal: one per target."""
    lines = []
    for t in summary.get("targets", []):
        if t["value"] is None:
            lines.append(f"target: {t['what']} >= {t['min']}: not measured in this run")
        elif t.get("busy"):
            lines.append(f"target: {t['what']} >= {t['min']}: {target_value(t)} ({t['backend']}), timed on a busy "
                         "machine: not judged")
        else:
            lines.append(f"target: {t['what']} >= {t['min']}: {target_value(t)} ({t['backend']}) — "
                         f"{'met' if t['met'] else 'NOT met'}")
        if t.get("floor") is not None:
            lines.append(f"  {floor_text(t)}")
    return lines


def floor_text(t: dict) -> str:
    """The line under a target that carries the method's floor (bench.md, terminal and README alike)."""
    return (f"the method's floor in this run (grey conversion, window cut and network alone): ×{t['floor']:.2f} "
            "of the network's own throughput")


def native_range(x: dict) -> tuple[float, float, int] | None:
    """(lowest, highest native ÷ own-network ratio, runs) of a speed_summary row whose native row repeated
    its runs; None for one run (records before the repeats)."""
    rg, n = x.get("native_vs_own_network_range"), x.get("native_repeats") or 0
    return (rg[0], rg[1], n) if rg and n > 1 else None


def _range_cell(m, rg, tail: str = "") -> str | None:
    """"×median (×lowest–×highest{tail})" of a repeated ratio; None where it was not repeated."""
    return f"×{m:.2f} (×{rg[0]:.2f}–×{rg[1]:.2f}{tail})" if m is not None and rg else None


def floor_cell(x: dict) -> str | None:
    """A row's floor ÷ network over its pairs; None for benches before the floor."""
    return _range_cell(x.get("floor_vs_network_paired"), x.get("floor_vs_network_paired_range"))


def paired_cell(x: dict) -> str | None:
    """A speed_summary row's paired e2e ÷ network ratio with its range and pairs (bench.md and README
    alike); None for rows of benches before the pairs."""
    n = x.get("e2e_paired_rounds") or 0
    return _range_cell(x.get("e2e_vs_network_paired"), x.get("e2e_vs_network_paired_range"), f", {n} pairs") if n else None


def speed_markdown(summary: dict) -> list[str]:
    """bench.md's section: per TAN row the network alone vs the Python tracker and the native tracker
    (each native ratio over the same runtime's own network alone), then the targets."""
    rows = summary.get("rows") or []
    if not rows:
        return []
    f = lambda v: "—" if v is None else f"{v:.1f}"   # noqa: E731
    r = lambda v: "—" if v is None else f"×{v:.2f}"   # noqa: E731
    spread = lambda x: "" if (g := native_range(x)) is None else f" (×{g[0]:.2f}–×{g[1]:.2f}, {g[2]} runs)"   # noqa: E731
    out = ["## Network alone vs end to end", "",
           "| backend | prec | network fps (1000 / mean ms) | e2e fps | e2e ÷ network | e2e ÷ network, paired "
           "| floor ÷ network, paired | native e2e fps | native network alone fps | native ÷ its network |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for x in rows:
        out.append(f"| {x['backend']} | {x['precision']} | {f(x.get('network_fps_mean') or x.get('network_fps'))} "
                   f"| {f(x.get('e2e_fps'))} | {r(x.get('e2e_vs_network'))} | {paired_cell(x) or '—'} | {floor_cell(x) or '—'} "
                   f"| {f(x.get('native_e2e_fps'))} "
                   f"| {f(x.get('native_network_fps'))} | {r(x.get('native_vs_own_network'))}{spread(x)} |")
    return out + [""] + [f"- {line}" for line in speed_lines(summary)]
