"""The CLI states no default twice: train/adapt take theirs from the config dataclasses they fill,
backend choices come from the registry, and track, eval and batch share one default backend."""
from __future__ import annotations

import dataclasses

import click
import pytest
import typer.main

from edge_tan.cli import app
from edge_tan.runtime import registry


def _params(name: str) -> dict[str, click.Parameter]:
    cmd = typer.main.get_command(app).commands[name]
    return {p.name: p for p in cmd.params}


@pytest.mark.parametrize("command,module,cls", [("train", "edge_tan.export.train.loop", "TrainConfig"),
                                                ("adapt", "edge_tan.export.adapt.run", "AdaptConfig")])
def test_options_default_to_the_config_dataclass(command, module, cls):
    pytest.importorskip("torch")
    import importlib
    config = getattr(importlib.import_module(module), cls)
    params = _params(command)
    shared = [f for f in dataclasses.fields(config) if f.name in params and f.default is not dataclasses.MISSING]
    assert len(shared) >= 6
    for f in shared:
        got = params[f.name].default
        want = f.default if f.default != "" else None   # "" (unset path) is None on the command line
        assert (str(got) if f.name == "out" else got) == want, f.name


def test_one_default_backend_and_choices_from_the_registry():
    for command in ("track", "batch", "eval"):
        assert _params(command)["backend"].default == registry.DEFAULT_BACKEND, command
    for command in ("track", "batch"):
        assert _params(command)["backend"].help == "|".join(registry.names())
    assert _params("export")["target"].help == "|".join(registry.targets())
    from edge_tan.batch.model import RunConfig
    from edge_tan.batch.run import run_batch
    import inspect
    assert RunConfig("out").backend == inspect.signature(run_batch).parameters["backend"].default == registry.DEFAULT_BACKEND
