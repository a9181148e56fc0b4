"""One exception type for every user-facing failure, so the CLI can print one line and exit non-zero."""


class EdgeTanError(Exception):
    """A problem with the user's input or environment, stated in one line (no traceback needed)."""

    exit_code = 1


class BackendUnavailable(EdgeTanError):
    """A backend's package, device or driver is absent here: reports say "unavailable", never "failed"."""


class UsageError(EdgeTanError):
    """Wrong arguments or an impossible combination of options."""

    exit_code = 2


ONE_LINE_CHARS = 200   # how much of an exception's first line a message or a table cell carries


def first_line(e: BaseException) -> str:
    """An exception's message as one line: its first line, at most ONE_LINE_CHARS characters."""
    s = str(e)
    return s.splitlines()[0][:ONE_LINE_CHARS] if s else ""


def one_line(e: BaseException) -> str:
    """An exception as one line for a report or an error message: "TypeName: first line"."""
    return f"{type(e).__name__}: {first_line(e)}"
