"""The `edge-tan` Typer app, the decorator every command is declared with, and the one-line error rule."""

from __future__ import annotations

import functools
import os

import typer

from ..runtime.errors import EdgeTanError, one_line

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Temporal Affine Network (TAN) LV tracking for 2D echo: phantom, training, export, "
                       "tracking, parity and benchmarks across ONNX Runtime / OpenVINO / TensorRT.")


def _one_line_errors(fn):
    """Turn EdgeTanError (and unexpected crashes) into one stderr line and a non-zero exit."""

    @functools.wraps(fn)
    def wrapper(*a, **k):
        try:
            return fn(*a, **k)
        except EdgeTanError as e:
            typer.echo(f"edge-tan: error: {e}", err=True)
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            typer.echo("edge-tan: interrupted", err=True)
            raise typer.Exit(130) from None
        except typer.Exit:
            raise
        except Exception as e:  # pragma: no cover - last resort, keeps tracebacks out of users' logs
            if os.environ.get("EDGE_TAN_DEBUG"):
                raise
            typer.echo(f"edge-tan: internal error: {one_line(e)} (set EDGE_TAN_DEBUG=1 for a traceback)",
                       err=True)
            raise typer.Exit(3) from None

    return wrapper


def command(*args, **kwargs):
    def deco(fn):
        return app.command(*args, **kwargs)(_one_line_errors(fn))
    return deco


def order_commands(names: list[str]) -> None:
    """List the commands in `edge-tan --help` in this order (the groups register them module by module)."""
    rank = {n: i for i, n in enumerate(names)}
    app.registered_commands.sort(key=lambda c: rank.get(c.name or c.callback.__name__, len(rank)))
