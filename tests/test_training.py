"""The shared training loop (training/engine.py), the bundle weights layout, the training CLI.

A toy two-stage network with dropout (so the torch RNG matters) trains in a second; the MR-less
normaliser's own determinism and resume test is in test_mrless.py.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from taupet_bids.errors import InputError
from taupet_bids.models.bundle import (
    METADATA,
    WEIGHTS,
    ModelIntegrityError,
    load_weights,
    sha256,
)
from taupet_bids.training import cli, engine


class Toy(nn.Module):
    """Two stages, like the normaliser: ``first`` then ``second`` on top of it."""

    def __init__(self):
        super().__init__()
        self.first = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.3), nn.ReLU())
        self.second = nn.Linear(8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(self.first(x))


def toy_batch(key: tuple[int, int, int], size: int = 8) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(list(key))
    x = rng.normal(size=(size, 4)).astype(np.float32)
    return x, x.sum(axis=1, keepdims=True) ** 2


def toy_stages(network: Toy) -> list[engine.Stage]:
    def loss(batch):
        x, y = map(torch.from_numpy, batch)
        return nn.functional.mse_loss(network(x), y)

    return [
        engine.Stage("first", network.first, 7, partial(toy_batch), loss, 1e-2),
        engine.Stage("second", network.second, 5, partial(toy_batch, size=4), loss, 1e-2),
    ]


class _Interrupt(Exception):
    pass


def train_toy(out: Path, log=lambda _: None) -> Toy:
    network = engine.seeded(Toy, seed=5, threads=1)
    engine.Run(out, seed=5, checkpoint_every=3, log=log).fit(network, toy_stages(network))
    return network


@pytest.mark.parametrize("stop_at", ["first step 6", "second step 3"])
def test_interrupted_and_resumed_run_equals_the_uninterrupted_one(tmp_path, stop_at):
    whole = train_toy(tmp_path / "whole")

    def stop(line: str) -> None:
        if f"checkpoint: {stop_at}" in line:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        train_toy(tmp_path / "cut", log=stop)
    lines: list[str] = []
    resumed = train_toy(tmp_path / "cut", log=lines.append)
    assert any(line.startswith("resuming") and stop_at.replace(" step", ", step") in line
               for line in lines)  # fmt: skip
    for key, value in whole.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    rows = [
        [row.split("\t")[:3] for row in (tmp_path / name / engine.LOG).read_text().splitlines()]
        for name in ("whole", "cut")
    ]
    assert rows[0] == rows[1] and len(rows[0]) == 1 + 7 + 5
    assert rows[0][0] == ["stage", "step", "loss"]


def test_resuming_with_another_step_count_is_refused_and_names_the_checkpoint(tmp_path):
    """A finished run asked for more steps would continue its cosine schedule past its end."""
    train_toy(tmp_path / "run")
    network = engine.seeded(Toy, seed=5, threads=1)
    stages = toy_stages(network)
    stages[1] = dataclasses.replace(stages[1], steps=9)
    with pytest.raises(InputError) as refused:
        engine.Run(tmp_path / "run", seed=5, checkpoint_every=3).fit(network, stages)
    message = str(refused.value)
    assert engine.CHECKPOINT in message and "5 second steps" in message and "asks for 9" in message
    train_toy(tmp_path / "run")  # the same step counts still resume (to the end: nothing to do)


def test_same_seed_same_weights_other_seed_other_weights(tmp_path):
    a, b = train_toy(tmp_path / "a"), train_toy(tmp_path / "b")
    c = engine.seeded(Toy, seed=6, threads=1)
    engine.Run(tmp_path / "c", seed=6, log=lambda _: None).fit(c, toy_stages(c))
    weight = "first.0.weight"
    assert torch.equal(a.state_dict()[weight], b.state_dict()[weight])
    assert not torch.equal(a.state_dict()[weight], c.state_dict()[weight])


def test_only_the_stage_module_moves(tmp_path):
    network = engine.seeded(Toy, seed=5, threads=1)
    before = {k: v.clone() for k, v in network.second.state_dict().items()}
    engine.Run(tmp_path, seed=5, log=lambda _: None).fit(network, toy_stages(network)[:1])
    for key, value in network.second.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_written_bundle_loads_with_its_checksum_and_refuses_another(tmp_path):
    network = train_toy(tmp_path / "run")
    weights = engine.save_weights(network, tmp_path / "run" / "model.pt")
    configs = tmp_path / "shipped_configs"
    configs.mkdir()
    (configs / "inference.json").write_text('{"network_def": {"_target_": "Toy"}}\n')
    (configs / "metadata.json").write_text("{}")  # never copied: the run writes its own
    bundle = engine.write_bundle(
        tmp_path / "bundle",
        weights,
        {"version": "0.1.0", "taupet_bids": {"training_config": {"seed": 5}}},
        lambda meta: f"# Toy {meta['version']}\n",
        configs,
    )
    meta = json.loads((bundle / METADATA).read_text())
    assert meta["taupet_bids"]["model_sha256"] == sha256(bundle / WEIGHTS)
    assert meta["taupet_bids"]["training_config"] == {"seed": 5}
    assert meta["monai_version"] and meta["schema"].endswith(".json")
    assert (bundle / "docs" / "README.md").read_text() == "# Toy 0.1.0\n"
    assert (bundle / "configs" / "inference.json").read_text() == (
        configs / "inference.json"
    ).read_text()
    loaded = load_weights(Toy(), bundle / WEIGHTS, meta["taupet_bids"]["model_sha256"])
    assert not loaded.training
    for key, value in network.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    with pytest.raises(ModelIntegrityError, match="does not match"):
        load_weights(Toy(), bundle / WEIGHTS, "0" * 64)


def test_weights_outside_child_modules_are_refused(tmp_path):
    network = Toy()
    network.register_parameter("scale", nn.Parameter(torch.ones(1)))
    with pytest.raises(ValueError, match="outside its child modules"):
        engine.save_weights(network, tmp_path / "model.pt")


def test_every_training_subcommand_has_a_main_and_its_own_help(capsys):
    for command in cli.COMMANDS:
        module = importlib.import_module(command.module)
        with pytest.raises(SystemExit) as done:
            cli.main([command.name, "--help"])
        assert done.value.code == 0
        assert f"taupet-bids-train {command.name}" in capsys.readouterr().out
        assert callable(module.main)
    with pytest.raises(SystemExit) as done:
        cli.main(["no-such-model"])
    assert done.value.code == 2
