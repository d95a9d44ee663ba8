"""PyTorch state dicts into the zoo: outputs equal torch's, and the errors.

torchvision is not needed: ResNet-18, ResNet-50 and VGG-11 are written here in plain
``torch.nn`` with torchvision's module tree (so ``state_dict()`` has torchvision's keys),
with random weights and random BatchNorm statistics, in eval mode. Sizes: ResNet-18 and
ResNet-50 on 2 images of 32x32 with 10 classes; VGG-11 (with and without BatchNorm) on 2
images of 64x64 (a 2x2 map before ``classifier``, which checks the channels-first
flatten; torchvision's adaptive pooling to 7x7, an identity at 224x224, is left out).
Outputs equal to 1e-4 relative (to the largest output).
"""

import numpy as np
import pytest

import jaxnets as jn

torch = pytest.importorskip("torch", reason="the PyTorch interop tests need torch")
nn = torch.nn

from jaxnets.interop.torch import load_state_dict  # noqa: E402


class BasicBlock(nn.Module):
    """torchvision's ``BasicBlock`` (same attribute names)."""

    def __init__(self, inplanes, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """torchvision's ``Bottleneck`` (v1.5: the stride on the 3x3 convolution)."""

    def __init__(self, inplanes, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, 4 * planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(4 * planes)
        self.relu = nn.ReLU()
        self.downsample = None
        if stride != 1 or inplanes != 4 * planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, 4 * planes, 1, stride, bias=False),
                nn.BatchNorm2d(4 * planes),
            )

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class ResNet(nn.Module):
    """torchvision's ``ResNet`` module tree (``resnet18``: basic blocks (2, 2, 2, 2);
    ``resnet50``: bottlenecks (3, 4, 6, 3))."""

    def __init__(self, layers, bottleneck, num_classes):
        super().__init__()
        block, expansion = (Bottleneck, 4) if bottleneck else (BasicBlock, 1)
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        inplanes = 64
        widths = (64, 128, 256, 512)
        for i, (count, planes) in enumerate(zip(layers, widths, strict=True), start=1):
            blocks = [block(inplanes, planes, 1 if i == 1 else 2)]
            blocks += [block(planes * expansion, planes, 1) for _ in range(count - 1)]
            setattr(self, f"layer{i}", nn.Sequential(*blocks))
            inplanes = planes * expansion
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512 * expansion, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


class VGG11(nn.Module):
    """torchvision's ``vgg11`` / ``vgg11_bn`` module tree, without the adaptive pooling."""

    def __init__(self, num_classes, batch_norm):
        super().__init__()
        layers, channels = [], 3
        for width in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"):
            if width == "M":
                layers.append(nn.MaxPool2d(2, 2))
                continue
            layers.append(nn.Conv2d(channels, width, 3, padding=1))
            layers += [nn.BatchNorm2d(width), nn.ReLU()] if batch_norm else [nn.ReLU()]
            channels = width
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Linear(512 * 2 * 2, 4096),
            nn.ReLU(),
            nn.Dropout(),
            nn.Linear(4096, 4096),
            nn.ReLU(),
            nn.Dropout(),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def _randomise(module, seed):
    """Random BatchNorm scales, offsets and running statistics; eval mode."""
    generator = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            with torch.no_grad():
                m.weight.copy_(0.5 + torch.rand(n, generator=generator))
                m.bias.copy_(0.2 * torch.randn(n, generator=generator))
                m.running_mean.copy_(0.2 * torch.randn(n, generator=generator))
                m.running_var.copy_(0.5 + torch.rand(n, generator=generator))
    return module.eval()


def _compare(model, params, state, torch_model, x):
    with torch.no_grad():
        expected = torch_model(torch.from_numpy(x)).numpy()
    y, _ = model.apply(params, state, x.transpose(0, 2, 3, 1), train=False)
    scale = np.abs(expected).max()
    assert np.std(expected) > 0.01 * scale  # the outputs vary: not two constants compared
    np.testing.assert_allclose(np.asarray(y) / scale, expected / scale, rtol=0, atol=1e-4)


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    model = _randomise(ResNet((2, 2, 2, 2), False, 10), 1)
    x = np.random.default_rng(0).normal(size=(2, 3, 32, 32)).astype(np.float32)
    return model, x


@pytest.mark.parametrize("source", ["dict", "pth", "safetensors"])
def test_resnet18_matches_torch(resnet, source, tmp_path):
    torch_model, x = resnet
    state_dict = torch_model.state_dict()
    if source == "pth":
        path = tmp_path / "resnet18.pth"
        torch.save(state_dict, path)
        state_dict = path
    elif source == "safetensors":
        from safetensors.numpy import save_file

        path = tmp_path / "resnet18.safetensors"
        save_file({k: v.numpy() for k, v in state_dict.items()}, str(path))
        state_dict = path
    model = jn.models.resnet18(10)
    params, state = load_state_dict(model, state_dict, (1, 32, 32, 3))
    _compare(model, params, state, torch_model, x)


def test_resnet50_bottlenecks_match_torch():
    torch.manual_seed(4)
    torch_model = _randomise(ResNet((3, 4, 6, 3), True, 10), 5)
    x = np.random.default_rng(2).normal(size=(2, 3, 32, 32)).astype(np.float32)
    model = jn.models.resnet50(10, convention="torchvision")
    params, state = load_state_dict(model, torch_model.state_dict(), (1, 32, 32, 3))
    _compare(model, params, state, torch_model, x)


@pytest.mark.parametrize("batch_norm", [False, True])
def test_vgg11_matches_torch(batch_norm):
    torch.manual_seed(2)
    torch_model = _randomise(VGG11(10, batch_norm), 3)
    x = np.random.default_rng(1).normal(size=(2, 3, 64, 64)).astype(np.float32)
    model = jn.models.vgg11(10, batch_norm=batch_norm)
    params, state = load_state_dict(model, torch_model.state_dict(), (1, 64, 64, 3))
    _compare(model, params, state, torch_model, x)


def test_errors_name_the_entry(resnet, tmp_path):
    state_dict = resnet[0].state_dict()
    model = jn.models.resnet18(10)
    bad = dict(state_dict, **{"layer2.0.conv1.weight": torch.zeros(128, 64, 3, 5)})
    with pytest.raises(
        ValueError,
        match=r"'layer2\.0\.conv1\.weight' has shape \(128, 64, 3, 5\), the model's params "
        r"'stage3/block1/main/conv1/kernel' needs \(128, 64, 3, 3\)",
    ):
        load_state_dict(model, bad, (1, 32, 32, 3))
    missing = {k: v for k, v in state_dict.items() if k != "layer3.1.bn2.running_var"}
    with pytest.raises(ValueError, match=r"lacks 'layer3\.1\.bn2\.running_var' .*'stage4/"):
        load_state_dict(model, missing, (1, 32, 32, 3))
    with pytest.raises(ValueError, match=r"has 'fc\.weight', which the model lacks \(a head"):
        load_state_dict(jn.models.resnet18(include_top=False), state_dict, (1, 32, 32, 3))
    with pytest.raises(ValueError, match="Keras convention"):
        load_state_dict(jn.models.resnet50(), state_dict, (1, 32, 32, 3))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"'.*junk\.pth' is not a state dict torch\.load"):
        load_state_dict(model, junk, (1, 32, 32, 3))
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(b"\x10\x00\x00")
    with pytest.raises(ValueError, match=r"'.*cut\.safetensors' is not a readable safetensors"):
        load_state_dict(model, cut, (1, 32, 32, 3))
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_state_dict(model, tmp_path / "absent.pth", (1, 32, 32, 3))
