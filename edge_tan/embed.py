"""The embedding API's public name: `from edge_tan.embed import open_tracker`.

It lives in the runtime (`edge_tan.runtime.embed`); this module only gives it the short import path
that README, examples and device code use, so a device install reaches the runtime and nothing else.
"""

from .runtime.embed import FrameResult, LVTracker, TrackerConfig, open_tracker

__all__ = ["LVTracker", "open_tracker", "FrameResult", "TrackerConfig"]
