"""SSDLite over the fbnet backbone (its diff_supernet run one op per layer), and the COCO
reader's classes subset (annotations of other categories skipped and counted)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from hwnas.errors import ConfigError, HwnasError, InputError
from hwnas.search.detection.ssd import HeadOptions
from hwnas.search.spaces.fbnet import OPS
from tests.search.det_export import exported_matches_shared

HEAD = HeadOptions(extra_channels=(32, 16))


def _fbnet(resolution: int = 32, wm_type: str = "diff_supernet") -> tuple[Any, Any]:
    from hwnas.config import parse_component
    from hwnas.search.build import build_component

    space = parse_component("search_space", {"type": "fbnet", "resolution": resolution, "num_classes": 3,
                                             "head_channels": 64}).build()
    wm = build_component(parse_component("weights_manager", {"type": wm_type}), space=space, seed=0)
    return space, wm


@pytest.fixture(scope="module")
def fbnet() -> tuple[Any, Any]:
    from hwnas.search.detection.model import DetSupernet

    space, wm = _fbnet()
    torch.manual_seed(0)
    return space, DetSupernet(wm, 3, 32, HEAD)


def test_fbnet_taps_are_the_last_map_before_the_final_downsampling_and_the_last_conv(fbnet: Any) -> None:
    from hwnas.search.detection.backbone import feature_channels, feature_strides

    space, net = fbnet
    assert feature_channels(space) == [112, 64] and feature_strides(space) == [4, 8]
    arch = space.sample(np.random.default_rng(0))
    with torch.no_grad():
        feats = net.features(torch.zeros(2, 3, 32, 32), net.wm.config_of(arch))
    assert [tuple(f.shape) for f in feats] == [(2, 112, 8, 8), (2, 64, 4, 4)]
    n_priors = sum(s * s for s in (8, 4, 2, 1)) * 4  # two backbone maps, two extras, 4 priors per cell
    assert len(net.priors) == n_priors


def test_exported_fbnet_detector_computes_what_the_shared_weights_compute(fbnet: Any) -> None:
    space, net = fbnet
    x, cand, exported = exported_matches_shared(space, net, 32, warm_steps=3)
    with torch.no_grad():
        conf_b = exported(x)[1]
        for p in net.features.parameters():  # the export holds copies: the supernet moving leaves it alone
            p.add_(0.05)
        assert not torch.allclose(cand(x)[1], conf_b)
        torch.testing.assert_close(exported(x)[1], conf_b)
    net.train()
    dets = exported.detect(x)
    assert len(dets) == 3 and all(d["boxes"].shape[1] == 4 for d in dets)


def test_a_step_on_the_shared_weights_trains_the_chosen_ops_only(fbnet: Any) -> None:
    from hwnas.search.detection.loss import multibox_loss

    space, net = fbnet
    arch = space.sample(np.random.default_rng(11))
    det = net.candidate(arch).train()
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    targets = [{"boxes": torch.tensor([[0.1, 0.2, 0.6, 0.7]]), "labels": torch.tensor([k % 3]),
                "difficult": torch.tensor([False])} for k in range(4)]
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(4):
        opt.zero_grad(set_to_none=True)
        loss = multibox_loss(*det(x), net.priors, targets)["loss"]
        loss.backward()
        if not losses:
            i = next(i for i, a in enumerate(arch) if OPS[a] != "skip")  # a layer whose chosen op has weights
            layer, chosen = net.wm.module.layers[1 + i], arch[i]  # node 0 is the stem
            assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in layer[chosen].parameters())
            assert all(p.grad is None for k, op in enumerate(layer) if k != chosen for p in op.parameters())
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]


def test_architecture_weights_mix_the_taps_as_the_chain_does(fbnet: Any) -> None:
    """One-hot weights give the discrete plan's maps; the loss reaches every weight of a layer."""
    from hwnas.search.weights.mixed import MixedPlan

    space, net = fbnet
    net.eval()
    arch = space.sample(np.random.default_rng(5))
    weights = {f"layer{i}": torch.nn.functional.one_hot(torch.tensor([a]), len(OPS)).float().requires_grad_()
               for i, a in enumerate(arch)}
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    mixed = net.features(x, MixedPlan(weights))
    with torch.no_grad():
        discrete = net.features(x, net.wm.config_of(arch))
    for m, d in zip(mixed, discrete):
        torch.testing.assert_close(m, d, rtol=1e-4, atol=1e-5)
    sum(f.square().mean() for f in mixed).backward()
    grad = weights["layer3"].grad
    assert grad is not None and int((grad.abs() > 0).sum()) >= len(OPS) - 1
    net.train()


def test_fbnet_detector_primitives_are_what_runs(fbnet: Any) -> None:
    from hwnas.search.detection.model import detector_primitives

    space, net = fbnet
    arch = space.sample(np.random.default_rng(3))
    prims = detector_primitives(space, arch, 3, 32, net.options)
    n_layers, n_maps = len(space.layers), 2 + 2
    assert len(prims) == 1 + n_layers + 1 + 3 * 2 + 3 * n_maps
    assert [p.op for p in prims[-3:]] == ["dwconv", "conv", "conv"]
    assert all(p.op not in ("pool", "fc") for p in prims)
    with torch.no_grad():
        feats = net.export(arch).backbone(torch.zeros(1, 3, 32, 32))
    tapped, last = prims[1 + 16], prims[1 + n_layers]  # layer 16 ends the stride-4 stage; then the 1x1 conv
    assert feats[0].shape[1] == tapped.c_out and feats[-1].shape[1:] == (last.c_out, last.h, last.w)
    assert feats[0].shape[2] == -(-tapped.h // tapped.stride)


def test_fbnet_without_its_chain_supernet_or_at_another_resolution_is_one_line(fbnet: Any) -> None:
    from hwnas.search.detection.model import DetSupernet

    _, plain = _fbnet(wm_type="plain")
    with pytest.raises(ConfigError, match=r"^weights_manager\.type: detection needs a shared-weights supernet"):
        DetSupernet(plain, 3, 32, HEAD)
    with pytest.raises(ConfigError, match=r"^search_space\.resolution: 32 differs .* resolution 48"):
        DetSupernet(fbnet[1].wm, 3, 48, HEAD)


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hwnas.search.detection.synth import SynthSpec, write_synthetic

    return write_synthetic(tmp_path_factory.mktemp("fbdet"), SynthSpec(n_train=8, n_val=4, n_test=4, size=32,
                                                                        seed=3))


def test_coco_classes_subset_skips_and_counts_the_other_categories(synth: Path, tmp_path: Path) -> None:
    from hwnas.config import parse_component
    from hwnas.search.build import build_component
    from hwnas.search.detection.data_coco import coco_categories, read_coco

    src = synth / "coco" / "annotations" / "instances_train.json"
    data = json.loads(src.read_text())
    (cid0, name0), (cid1, name1), (cid2, name2) = coco_categories(src)
    per_cat = {c: sum(a["category_id"] == c for a in data["annotations"]) for c in (cid0, cid1, cid2)}
    assert all(per_cat.values())
    ds = build_component(parse_component("dataset", {"type": "coco", "root": str(synth / "coco"), "resolution": 32,
                                                     "classes": f"{name2},{name0}"}), seed=0).prepare()
    assert ds.class_names == [name2, name0] and ds.num_classes == 2
    recs = ds.records("train")
    assert len(recs) == 8  # images whose boxes were all skipped stay, as negatives
    assert sum(r.n for r in recs) == per_cat[cid0] + per_cat[cid2]
    assert ds.skipped["train"] == {name1: per_cat[cid1]}
    labels = np.concatenate([r.labels for r in recs])
    assert (labels == 0).sum() == per_cat[cid2] and (labels == 1).sum() == per_cat[cid0]

    data["annotations"][1]["category_id"] = 999  # a category the file does not define is still an error
    bad = tmp_path / "instances_train.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(InputError, match=r"annotations\[1\]: category_id 999 is not one of the categories"):
        read_coco(bad, synth / "coco" / "train", {cid0: 0})


def test_detnas_flow_searches_derives_trains_and_tests_an_fbnet_detector(synth: Path, tmp_path: Path) -> None:
    """The -cpu DetNAS config with the fbnet backbone in miniature: every stage runs on the
    chain supernet, the derived detector is exported and trained, and its primitives priced."""
    import yaml

    from hwnas.search.detection.stages import run_flow

    raw = yaml.safe_load((Path(__file__).resolve().parents[2] / "configs" / "detnas-voc-cpu.yaml").read_text())
    raw["search_space"] = {"type": "fbnet", "resolution": 32, "num_classes": 3, "head_channels": 64}
    raw["weights_manager"] = {"type": "diff_supernet"}
    raw["dataset"].update(root=str(synth / "voc"), resolution=32)
    raw["head"]["extra_channels"] = [32, 16]
    raw["supernet"].update(steps=3, batch_size=4, warmup_steps=1)
    raw["controller"].update(population=2, sample_size=2)
    raw["search"].update(rollouts=3, batch=2, eval_images=4, eval_batch_size=4, calib_batches=1)
    raw["final"].update(steps=2, batch_size=4, warmup_steps=1)
    priced: list[list[Any]] = []

    def pricer(items: Any) -> float:  # a stand-in for a latency table: MACs-like size
        priced.append(list(items))
        return float(sum(p.c_in * p.c_out * p.h * p.w for p in items)) * 1e-6

    sandwich = {**raw, "supernet": {**raw["supernet"], "sampling": "sandwich"}}
    with pytest.raises(HwnasError, match=r"supernet.sampling: sandwich sampling needs the largest .* space "
                                         r"'fbnet' has decisions without an order of size .*use uniform"):  # fbnet's chain has no largest/smallest subnet
        run_flow(sandwich, tmp_path / "sandwich", pricer=pricer, coco=False)
    res = run_flow(raw, tmp_path / "run", pricer=pricer, coco=False)
    search = json.loads((tmp_path / "run" / "search.json").read_text())
    assert len(search["history"]) == 3 and res["arch"] == max(search["history"], key=lambda h: h["reward"])["arch"]
    assert len(res["arch"].split()) == 22 and res["test"]["images"] == 4 and 0.0 <= res["test"]["map50"] <= 1.0
    final = json.loads((tmp_path / "run" / "final.json").read_text())
    assert len(final["losses"]) == 2 and all(np.isfinite(final["losses"]))
    assert res["primitives"] == len(priced[-1]) and priced[-1][0].op == "conv" and res["predicted_latency_ms"] > 0
