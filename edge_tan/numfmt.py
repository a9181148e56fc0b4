"""The one way a number becomes table text (terminal tables, Markdown reports, README sections).

Every report used to carry its own helper; they differed only in the marker for a missing value and
in whether a fraction is shown as a percentage, so those are the options.
"""

from __future__ import annotations

import math


def fmt(v, nd: int = 2, *, missing: str = "n/a", pct: bool = False, unit: str = "", sci: bool = False) -> str:
    """`v` with `nd` decimals (x100 when `pct`), then `unit`; `missing` for None and NaN.

    sci: report style for values of any size (bench and parity tables): e-notation below 10**-nd and
    from 10**6 on, "inf" for +inf, integers as they are."""
    if v is None:
        return missing
    if sci and not isinstance(v, float):
        return f"{v}{unit}"
    x = float(v) * (100.0 if pct else 1.0)
    if not math.isfinite(x):
        return "inf" if sci and x > 0 else missing
    if sci and x != 0 and (abs(x) < 10 ** -nd or abs(x) >= 1e6):
        return f"{x:.2e}{unit}"
    return f"{x:.{nd}f}{unit}"
