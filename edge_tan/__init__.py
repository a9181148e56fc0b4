"""edge-tan: Temporal Affine Network (TAN) left-ventricle tracking for 2D echo, from training to edge.

The core package (this one) depends on numpy + OpenCV only, so a device can embed the tracker
without torch or any particular inference backend.
"""

__version__ = "0.1.0"

LANDMARK_NAMES = ("apex", "annulus_left", "annulus_right")
VIEW_NAMES = ("A2C", "A4C")
