"""The digits data and CNN of tools/digits_cnn.py as fixtures, for the accuracy tests; a test module imports
the fixtures it uses (``trained``, ``digits``) and marks ``one_thread`` as autouse."""

import pytest
import torch

pytest.importorskip("sklearn.datasets")

from digits_cnn import DIGIT_SHAPE, digit_net, digits_split, train_net  # noqa: E402, F401 (re-exported)


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
