"""edge-tan: Temporal Affine Network (TAN) left-ventricle tracking for 2D echo, from training to edge.

Layers: `edge_tan.runtime` (what a device embeds: numpy + OpenCV only), the core beside it (readers,
datasets, phantom, metrics), `edge_tan.targets` and `edge_tan.export` (building artifacts; the torch
side) and the application on top (CLI, batch, bench). The package imports nothing heavy on import.
"""

from .runtime import LANDMARK_NAMES, VIEW_NAMES, __version__

__all__ = ["LANDMARK_NAMES", "VIEW_NAMES", "__version__"]
