"""GPU paths (marked ``gpu``; skipped cleanly without CUDA): a train step on CUDA with and
without AMP, a supernet step, checkpoints moving between devices, ORT CUDA timing with
I/O binding, torch CUDA events and NVML energy on the chosen GPU."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


@pytest.mark.parametrize("amp", ["off", "bf16", "fp16"])
def test_train_step_on_cuda(amp: str) -> None:
    from hwnas.run_section import ExecOptions, OptimOptions
    from hwnas.search.runtime import Runtime
    from hwnas.search.training import make_optimizer, train_pass

    rt = Runtime.from_options(ExecOptions(device="cuda", amp=amp, channels_last=True))
    model = rt.model(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                                         torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 4)))
    g = torch.Generator().manual_seed(0)
    batches = [(torch.randn(32, 3, 16, 16, generator=g), torch.randint(0, 4, (32,), generator=g)) for _ in range(8)]
    o = OptimOptions(lr=0.05)
    stats = train_pass(model, batches, make_optimizer(model.parameters(), o), o, runtime=rt)
    assert all(torch.isfinite(torch.tensor(stats.losses))) and stats.seen == 256
    assert next(model.parameters()).is_cuda
    assert (rt.scaler is not None) == (amp == "fp16")


def test_supernet_step_on_cuda_and_checkpoint_to_cpu(tmp_path: Path) -> None:
    from hwnas.run_section import ExecOptions
    from hwnas.search.datasets.builtin import DigitsDataset
    from hwnas.search.evaluators.mepa import MepaEvaluator
    from hwnas.search.rollout import Rollout
    from hwnas.search.runtime import Runtime
    from hwnas.search.spaces.nb201 import NB201Space
    from hwnas.search.trainers.checkpoint import load_checkpoint, save_checkpoint
    from hwnas.search.weights.supernet_nb201 import NB201Supernet

    rt = Runtime.from_options(ExecOptions(device="cuda", amp="bf16"))
    space = NB201Space(channels=4, cells_per_stage=1, resolution=8, in_channels=1)
    wm = NB201Supernet(space=space, seed=0)
    data = DigitsDataset(DigitsDataset.Options(resolution=8, channels=1), seed=0)
    ev = MepaEvaluator(MepaEvaluator.Options(steps=3, batch_size=32), space=space, weights_manager=wm,
                       dataset=data, runtime=rt)
    stats = ev.update_evaluator()
    assert stats["supernet_loss"] > 0 and next(wm.module.parameters()).is_cuda
    r = Rollout(space.sample(__import__("numpy").random.default_rng(0)))
    ev.evaluate([r])
    assert 0 <= r.perfs["accuracy"] <= 1
    trained = {k: v.detach().cpu() for k, v in wm.state_dict().items()}
    save_checkpoint(tmp_path, {"weights_manager": wm.state_dict()}, 1)
    state = load_checkpoint(tmp_path, map_location="cpu")["weights_manager"]
    assert set(state) == set(trained) and all(not t.is_cuda for t in state.values())
    assert all(torch.equal(state[k], trained[k]) for k in trained)  # what was saved on the GPU, bit for bit
    cpu_wm = NB201Supernet(space=space, seed=1)
    assert not all(torch.equal(v.cpu(), trained[k]) for k, v in cpu_wm.state_dict().items())  # seed 1 differs
    cpu_wm.load_state_dict(state)
    loaded = cpu_wm.state_dict()
    assert set(loaded) == set(trained) and all(torch.equal(loaded[k].cpu(), trained[k]) for k in trained)


def test_onnxruntime_cuda_io_binding_and_torch_events(tiny_net) -> None:
    from hwnas import registry
    from hwnas.profilers.timing import TimingProtocol

    proto = TimingProtocol(warmup=2, min_repeats=3, max_repeats=5, min_time_ms=0.5, time_budget_s=1, sessions=1)
    torch_be = registry.build("backend", "torch", device="gpu", threads=1)
    torch_be.check_device()
    ref = torch_be.prepare(tiny_net).output()
    samples = torch_be.measure(tiny_net, proto, with_energy=False).samples_ms
    assert len(samples) >= proto.min_repeats and all(0 < x < 1e4 for x in samples)
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("onnxruntime-gpu is not installed")
    be = registry.build("backend", "onnxruntime", device="gpu", threads=1)
    prepared = be.prepare(tiny_net)
    assert prepared.info.get("io_binding")
    import numpy as np

    np.testing.assert_allclose(prepared.output(), ref, rtol=1e-2, atol=1e-3)
    res = be.measure(tiny_net, proto, with_energy=True)
    assert min(res.samples_ms) > 0 and be.backend_settings()["io_binding"]


def test_nvml_energy_on_chosen_gpu() -> None:
    pytest.importorskip("pynvml")
    from hwnas.profilers.energy import EnergyMeter

    meter = EnergyMeter("gpu", gpu_index=torch.cuda.device_count() - 1)
    if meter.source is None:
        pytest.skip("this GPU has no NVML energy counter")
    meter.start()
    x = torch.randn(2048, 2048, device=f"cuda:{torch.cuda.device_count() - 1}")
    for _ in range(50):
        x = x @ x / 2048
    torch.cuda.synchronize()
    reading = meter.stop()
    assert reading.source == "nvml" and reading.energy_j is not None and reading.energy_j >= 0
