"""scikit-learn's handwritten digits (shipped with the package) and a small CNN trained on them in seconds:
data whose labels mean something, for the accuracy tests; a test module imports the fixtures it uses
(``trained``, ``digits``) and marks ``one_thread`` as autouse."""

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

sklearn_datasets = pytest.importorskip("sklearn.datasets")

DIGIT_SHAPE = (1, 8, 8)


def digits_split() -> tuple[TensorDataset, TensorDataset]:
    digits = sklearn_datasets.load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.tensor(digits.target, dtype=torch.long)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    train, test = order[:1400], order[1400:]
    return TensorDataset(images[train], labels[train]), TensorDataset(images[test], labels[test])


def digit_net() -> nn.Module:
    def block(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

    return nn.Sequential(
        *block(1, 16), *block(16, 32), nn.MaxPool2d(2), *block(32, 32),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10),
    )  # fmt: skip


def train_net(model: nn.Module, data: TensorDataset, epochs: int = 6) -> nn.Module:
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(epochs):
        for images, labels in DataLoader(data, batch_size=64, shuffle=True):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(images), labels).backward()
            optimizer.step()
    return model.eval()


@pytest.fixture(scope="module")
def one_thread(one_torch_thread):
    """Tiny batches on a small, shared CPU run much faster on one thread than fighting over two."""


@pytest.fixture(scope="module")
def digits():
    return digits_split()


@pytest.fixture(scope="module")
def trained(digits):
    torch.manual_seed(0)
    return train_net(digit_net(), digits[0])
