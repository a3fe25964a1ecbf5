"""PyTorch twins of medpipe's models for `train_throughput.py --reference torch` (imported only then).

Based on ../shared/gpu/torch_reference.py: plain PyTorch, bf16 autocast on CUDA, channels_last,
model compute only (synthetic tensors already on the device). baseline_cnn and small_resnet are
written out here (same layers as pipeline/models/cnn.py); the 224-px applications come from
torchvision (on the GPU host; None when torchvision is missing, e.g. a CPU-only torch build).
"""

from __future__ import annotations

import time

import torch
from torch import nn


def baseline_cnn(n_classes: int = 2, dropout: float = 0.3) -> nn.Module:
    layers, c = [], 3
    for f in (32, 64, 128):
        layers += [nn.Conv2d(c, f, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        c = f
    head = [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 128), nn.ReLU(), nn.Dropout(dropout)]
    return nn.Sequential(*layers, *head, nn.Linear(128, n_classes))


class _Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.proj = None
        if stride != 1 or cin != cout:
            self.proj = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(y + (x if self.proj is None else self.proj(x)))


def small_resnet(n_classes: int = 2, widths: tuple[int, ...] = (32, 64, 128)) -> nn.Module:
    layers: list[nn.Module] = [
        nn.Conv2d(3, widths[0], 3, padding=1, bias=False),
        nn.BatchNorm2d(widths[0]),
        nn.ReLU(),
    ]
    cin = widths[0]
    for s, w in enumerate(widths):
        for b in range(2):
            layers.append(_Block(cin, w, 2 if (s > 0 and b == 0) else 1))
            cin = w
    return nn.Sequential(
        *layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.3), nn.Linear(cin, n_classes)
    )


def build(name: str, n_classes: int = 2) -> nn.Module | None:
    if name == "baseline_cnn":
        return baseline_cnn(n_classes)
    if name == "small_resnet":
        return small_resnet(n_classes)
    try:
        import torchvision
    except ImportError:
        return None
    tv = {"densenet201": "densenet201", "mobilenetv2": "mobilenet_v2", "efficientnetb0": "efficientnet_b0"}
    return getattr(torchvision.models, tv[name])(num_classes=n_classes)


def train_rate(
    name: str, size: int, batch: int, steps: int, warmup: int = 8
) -> tuple[float | None, str, str]:
    """(img/s, device, precision) of Adam training steps on synthetic tensors already on the device."""
    model = build(name)
    if model is None:
        return None, "", "torchvision missing"
    cuda = torch.cuda.is_available()
    dev = "cuda" if cuda else "cpu"
    torch.backends.cudnn.benchmark = True
    model = model.to(dev).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), 1e-4)
    x = torch.rand(batch, 3, size, size, device=dev).to(memory_format=torch.channels_last)
    y = torch.randint(0, 2, (batch,), device=dev)
    lossf = nn.CrossEntropyLoss()

    def step():
        with torch.autocast(dev, dtype=torch.bfloat16, enabled=cuda):
            loss = lossf(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    if cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if cuda:
        torch.cuda.synchronize()
    device = torch.cuda.get_device_name(0) if cuda else "cpu"
    return batch * steps / (time.perf_counter() - t0), device, "bf16 autocast" if cuda else "float32"
