"""One exception type for every user-facing failure, so the CLI can print one line and exit non-zero."""


class EdgeTanError(Exception):
    """A problem with the user's input or environment, stated in one line (no traceback needed)."""

    exit_code = 1


class BackendUnavailable(EdgeTanError):
    """A backend's package, device or driver is absent here: reports say "unavailable", never "failed"."""


class UsageError(EdgeTanError):
    """Wrong arguments or an impossible combination of options."""

    exit_code = 2
