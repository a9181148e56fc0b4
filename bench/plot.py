"""The bench plot, in the spirit of the paper's Fig. 6: speed (log x) vs accuracy, marker area ~ params.

One point per model x backend x precision that ran. Models without an accuracy (untrained, speed
only) sit in a separate band below the axis with hollow markers, so they are never read as a score.
"""

from __future__ import annotations

import math
from pathlib import Path

from edge_tan.runtime.atomic import atomic_path

# one colour per backend, in registry order (built-ins keep the colours they always had)
PALETTE = ("tab:orange", "tab:blue", "tab:purple", "tab:green", "tab:red", "tab:brown", "tab:pink", "tab:olive",
           "tab:cyan")


def backend_colors() -> dict:
    from edge_tan.runtime.registry import names
    return {b: PALETTE[i % len(PALETTE)] for i, b in enumerate(names())}
MARKERS = {"fp32": "o", "fp16": "s", "int8": "^", "bf16": "D"}


def _speed(r: dict) -> float | None:
    v = (r.get("e2e") or {}).get("fps") or r.get("fps")
    return float(v) if v and math.isfinite(v) else None


def bench_plot(report: dict, path: str | Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in report["rows"] if r.get("status") in ("ok", "inaccurate") and _speed(r)]
    colors = backend_colors()
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    scored = [r for r in rows if (r.get("accuracy") or {}).get("dice") is not None and r.get("trained")]
    unscored = [r for r in rows if r not in scored]
    dices = [100 * r["accuracy"]["dice"] for r in scored]
    lo = min(dices) - 5 if dices else 0.0
    hi = max(dices) + 3 if dices else 100.0
    band = lo - (hi - lo) * 0.12
    for i, r in enumerate(rows):
        params = r.get("params") or 1e6
        size = 30 + 600 * math.sqrt(params / 60e6)
        y = 100 * r["accuracy"]["dice"] if r in scored else band
        c = colors.get(r["backend"], "gray")
        ax.scatter([_speed(r)], [y], s=size, marker=MARKERS.get(r["precision"], "o"),
                   facecolors=c if r in scored else "none", edgecolors=c, alpha=0.7, linewidths=1.5)
        ax.annotate(r["model"], (_speed(r), y), fontsize=7, xytext=(6, 6 + 9 * (i % 3)), textcoords="offset points")
    ax.set_xscale("log")
    from matplotlib.lines import Line2D
    used_b = list(dict.fromkeys(r["backend"] for r in rows))
    used_p = list(dict.fromkeys(r["precision"] for r in rows))
    handles = [Line2D([], [], color=colors.get(b, "gray"), marker="o", ls="", label=b) for b in used_b] + \
        [Line2D([], [], color="black", marker=MARKERS.get(p, "o"), ls="", fillstyle="none", label=p) for p in used_p]
    if handles:
        ax.legend(handles=handles, fontsize=7, loc="upper left", frameon=False)
    if unscored:
        ax.axhline(band + (hi - lo) * 0.06, color="lightgray", lw=0.8, ls="--")
        handles.append(Line2D([], [], color="gray", marker="o", ls="", fillstyle="none",
                              label="hollow, bottom band: untrained / no labels (speed only)"))
        ax.legend(handles=handles, fontsize=7, loc="upper left", frameon=False)
    ax.set_ylim(band - (hi - lo) * 0.08, hi)
    ticks = [t for t in ax.get_yticks() if lo <= t <= hi]
    ax.set_yticks(ticks + ([band] if unscored else []))
    ax.set_yticklabels([f"{t:g}" for t in ticks] + (["speed\nonly"] if unscored else []))
    ax.set_xlabel("end-to-end tracker fps (log scale; model-only where e2e missing)")
    ax.set_ylabel("mean Dice vs labels (%)")
    ax.set_title("edge-tan bench: speed vs accuracy (marker area ~ parameters)", fontsize=10)
    fig.text(0.99, 0.005, report.get("machine_line", "")[:160], fontsize=5, ha="right", va="bottom", color="gray")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path
