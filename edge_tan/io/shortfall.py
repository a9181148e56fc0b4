"""Frames a clip's header promises vs frames that decoded: a cut file must not give a "reliable" EF.

A video cut at 30 % still opens, and OpenCV decodes the frames that are there and stops without an
error; the header (AVI index, MP4 sample table, DICOM NumberOfFrames) still says how many there should
be. The gap goes into the QC verdict (unreliable, with the reason first) and into the JSON.
"""

from __future__ import annotations


def missing_frames(promised: int | None, decoded: int) -> int:
    """How many promised frames did not decode (0 when the header gives no count). Containers whose
    count is an estimate (duration x fps) may be off by a frame or two: that much is not a gap."""
    if not promised or promised <= 0:
        return 0
    gap = int(promised) - int(decoded)
    return gap if gap > max(1, round(0.02 * promised)) else 0


def mark_shortfall(qc: dict | None, promised: int | None, decoded: int) -> dict | None:
    """A new qc block with the decode counts; a gap makes the verdict unreliable, reason first."""
    if qc is None:
        return None
    qc = {**qc, "decode": {"frames_promised": int(promised) if promised else None, "frames_decoded": int(decoded)}}
    gap = missing_frames(promised, decoded)
    if gap:
        reason = f"file truncated or corrupt: {decoded} of {int(promised)} frames decoded"
        qc["reliable"] = False
        qc["reasons"] = [reason] + [r for r in qc.get("reasons", []) if r != reason]
    return qc
