"""Move the out-of-domain reference to the site at the end of `edge-tan adapt` (issue 25).

After adaptation the network is meant for the site's images: its reference statistics (edge_tan.runtime.ood)
are re-estimated on the windows the tracker feeds the *adapted* network on the site's clips, and the
thresholds are set on site clips held back from that fit (every `HOLD_EVERY`-th clip in a seeded
order, at least 2). So the adapted model accepts the site's in-domain clips and still refuses what
differs from them (noise, another view, a phantom). With fewer than `MIN_CLIPS` clips there is too
little to estimate a reference from: the written weights then carry none and every report says
"no gate" (the phantom reference of the input weights would refuse every site clip).
"""

from __future__ import annotations

import numpy as np

from ..ood_fit import fit_sequences

MIN_CLIPS = 6
HOLD_EVERY = 4          # one clip in four held out for the thresholds
MAX_CLIPS = 48          # tracked for the statistics (time: one more tracking pass over at most this many)


def site_reference(model, md, seqs, seed: int = 0, max_frames: int = 64, log=print) -> dict:
    """The `ModelMetadata.ood` dict for the adapted model (empty: too few clips; see module doc)."""
    if len(seqs) < MIN_CLIPS:
        log(f"out-of-domain reference: {len(seqs)} clips are too few to re-estimate it (need {MIN_CLIPS}); "
            "the adapted weights carry none (no gate)")
        return {}
    order = np.random.default_rng([seed, 25]).permutation(len(seqs))[:MAX_CLIPS]
    held = [seqs[i] for j, i in enumerate(order) if j % HOLD_EVERY == 0]
    fit = [seqs[i] for j, i in enumerate(order) if j % HOLD_EVERY != 0]
    ref = fit_sequences(model, md, fit, held, max_frames=max_frames,
                        info={"fitted_on": f"{len(fit)} site clips (edge-tan adapt)",
                              "held_out": f"{len(held)} site clips", "weights_sha256": "adapted"})
    log(f"out-of-domain reference re-estimated on {len(fit)} site clips ({ref.info['windows']} windows); "
        f"thresholds from {len(held)} held-back clips: frame {ref.frame_threshold:.2f}, clip {ref.clip_threshold:.2f}")
    return ref.to_dict()
