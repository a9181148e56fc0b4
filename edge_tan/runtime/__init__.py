"""The runtime: what a device needs to track a clip, and nothing else.

Reading an artifact's metadata, opening it with the runner its file type names (the backend
registry), the stateful tracker, the out-of-domain gate, QC, clinical measures and the result
writers. Depends on numpy + OpenCV (and the one backend package an artifact needs) only; imports
nothing from the rest of edge_tan (tests/test_import_graph.py holds it to that): the application
layer (CLI, batch, bench), the torch side (`edge_tan.export`) and the artifact builders
(`edge_tan.targets`) sit on top of it.
"""

__version__ = "0.1.0"

LANDMARK_NAMES = ("apex", "annulus_left", "annulus_right")
VIEW_NAMES = ("A2C", "A4C")
