"""Device, precision and layout settings: validated at the edge, one-line errors for a
device that is not there, bf16 autocast and channels-last training on the CPU."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from torch import nn

from hwnas.cli import main
from hwnas.errors import ConfigError
from hwnas.run_section import ExecOptions, OptimOptions
from hwnas.search.runtime import Runtime, exec_options, no_flags, resolve_device
from hwnas.search.training import make_optimizer, train_pass

NO_CUDA = not torch.cuda.is_available()


def test_exec_options_validated() -> None:
    o = exec_options({"device": "cpu", "amp": "bf16", "dir": "runs/x", "train": {}}, device=None)
    assert o.device == "cpu" and o.amp == "bf16"  # other run keys belong to other readers
    assert exec_options({"device": "cpu"}, device="cuda:1").device == "cuda:1"  # --device wins
    with pytest.raises(ConfigError, match=r"run.device: expected auto, cpu, cuda or cuda:N, got 'gpu'"):
        exec_options({"device": "gpu"})
    with pytest.raises(ConfigError, match=r"run.amp: expected one of 'off', 'bf16', 'fp16'"):
        exec_options({"amp": "fp8"})
    with pytest.raises(ConfigError, match="run.amp: fp16 needs a CUDA device"):
        Runtime.from_options(ExecOptions(device="cpu", amp="fp16"))
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cpu" if NO_CUDA else "cuda")


@pytest.mark.skipif(not NO_CUDA, reason="checks the error on a machine without CUDA")
def test_cuda_without_cuda_is_one_line(tmp_path: Path, capsys: Any) -> None:
    with pytest.raises(ConfigError, match=r"--device cuda: CUDA is not available .*use --device cpu"):
        resolve_device("cuda")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"dataset": {"type": "synthetic", "resolution": 8, "channels": 1},
                                   "search_space": {"type": "nb201", "channels": 4, "cells_per_stage": 1,
                                                    "resolution": 8, "in_channels": 1}}))
    arch = tmp_path / "a.yaml"
    arch.write_text(yaml.safe_dump({"space": "nb201", "arch": [1, 1, 1, 1, 1, 1]}))
    for argv in (["train", str(cfg), "--arch", str(arch), "--out", str(tmp_path / "o"), "--device", "cuda"],
                 ["eval-arch", str(cfg), "--arch", "1-1-1-1-1-1", "--device", "cuda"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert "CUDA is not available" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o" / "checkpoint.pt").exists()


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(8, 4))


def _batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(16, 3, 8, 8, generator=g), torch.randint(0, 4, (16,), generator=g)) for _ in range(6)]


def test_bf16_autocast_and_channels_last_on_cpu() -> None:
    o = OptimOptions(lr=0.05)
    runs = {}
    for name, rt in {"fp32": Runtime.cpu(), "bf16": Runtime(torch.device("cpu"), amp="bf16"),
                     "nhwc": Runtime(torch.device("cpu"), channels_last=True)}.items():
        model = rt.model(_net())
        if name == "nhwc":
            assert model[0].weight.is_contiguous(memory_format=torch.channels_last)
        runs[name] = train_pass(model, _batches(), make_optimizer(model.parameters(), o), o, runtime=rt).losses
    assert runs["nhwc"] == pytest.approx(runs["fp32"], rel=1e-4)  # same maths, other layout
    assert runs["bf16"] == pytest.approx(runs["fp32"], rel=0.05)  # bf16: ~3 significant digits
    assert runs["bf16"] != runs["fp32"]  # and it really ran in bf16


def test_deterministic_switch() -> None:
    with no_flags():
        Runtime.from_options(ExecOptions(device="cpu", deterministic=True))
        assert torch.are_deterministic_algorithms_enabled()
    with pytest.raises(ConfigError, match="cudnn_benchmark"):
        exec_options({"deterministic": True, "cudnn_benchmark": True})
