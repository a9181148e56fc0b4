"""Bland-Altman and scatter plots of tracked EF against report EF (PNG, written atomically).

matplotlib is imported only here, inside the function, so the core a device embeds never needs it;
a missing matplotlib is one clear error that says how to get it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .runtime.atomic import atomic_path
from .runtime.errors import EdgeTanError


def _plt():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise EdgeTanError("plots need matplotlib: pip install matplotlib (or pass --no-plots)") from None
    return plt


def _accepted_vs_unreliable(ax, x, y, ok) -> None:
    """QC-accepted clips filled, unreliable ones hollow red: the same encoding in both plots."""
    ax.scatter(x[ok], y[ok], s=18, c="tab:blue", label=f"QC accepted ({int(ok.sum())})")
    ax.scatter(x[~ok], y[~ok], s=18, facecolors="none", edgecolors="tab:red",
               label=f"QC unreliable ({int((~ok).sum())})")


def _finish(fig, ax, xlabel: str, ylabel: str, title: str, path: Path, plt) -> str:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title.strip(), fontsize=9)
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return _save(fig, path, plt)


def ef_plots(ref: np.ndarray, pred: np.ndarray, reliable: np.ndarray, out_dir: str | Path,
             title: str = "") -> dict[str, str]:
    """Write bland_altman.png and ef_scatter.png into out_dir; QC-rejected clips drawn hollow/red."""
    plt = _plt()
    ref, pred, ok = np.asarray(ref, float), np.asarray(pred, float), np.asarray(reliable, bool)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    diff, mean = pred - ref, 0.5 * (pred + ref)

    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=120)
    if len(diff):
        bias, sd = float(diff.mean()), float(diff.std(ddof=1)) if len(diff) > 1 else 0.0
        _accepted_vs_unreliable(ax, mean, diff, ok)
        for y, ls, lab in ((bias, "-", f"bias {bias:+.1f}"), (bias + 1.96 * sd, "--", f"+1.96 SD {bias + 1.96 * sd:+.1f}"),
                           (bias - 1.96 * sd, "--", f"-1.96 SD {bias - 1.96 * sd:+.1f}")):
            ax.axhline(y, color="gray", ls=ls, lw=1)
            ax.annotate(lab, (1.0, y), xycoords=("axes fraction", "data"), fontsize=7, ha="right", va="bottom")
    paths["bland_altman"] = _finish(fig, ax, "mean of tracked and report EF (%)", "tracked − report EF (points)",
                                    f"Bland-Altman {title}", out_dir / "bland_altman.png", plt)

    fig, ax = plt.subplots(figsize=(5, 5), dpi=120)
    _accepted_vs_unreliable(ax, ref, pred, ok)
    lo = float(min(ref.min(), pred.min(), 0.0)) if len(ref) else 0.0
    hi = float(max(ref.max(), pred.max(), 80.0)) if len(ref) else 100.0
    ax.plot([lo, hi], [lo, hi], color="gray", lw=1)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    paths["scatter"] = _finish(fig, ax, "report EF (%)", "tracked EF (%)", f"EF {title}", out_dir / "ef_scatter.png", plt)
    return paths


def _save(fig, path: Path, plt) -> str:
    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)
    return str(path)
