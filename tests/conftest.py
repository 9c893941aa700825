import pytest
import torch


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch on one thread for a module, restored after it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
