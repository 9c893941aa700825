"""Pins torch's private profiler API that pytest_edgeprof.compat.torch_profiler reads.

If one of these fails, the installed torch changed that API: fix the compat module before
trusting memory.py's CPU peak.
"""

from __future__ import annotations

import torch
from torch.profiler import ProfilerActivity, profile

from pytest_edgeprof.compat.torch_profiler import allocation_events

KNOWN_BYTES = 1_234_567  # odd, so no rounding by an allocator could produce it by chance


def test_the_private_names_exist() -> None:
    from torch._C import _profiler

    assert hasattr(_profiler._EventType, "Allocation"), torch.__version__
    assert hasattr(_profiler, "_ProfilerEvent"), torch.__version__


def test_a_known_allocation_and_its_free_are_seen_with_the_exact_size() -> None:
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        tensor = torch.empty(KNOWN_BYTES, dtype=torch.uint8)
        del tensor

    events = allocation_events(prof, "cpu")
    allocated = [event for event in events if event.size == KNOWN_BYTES]
    assert len(allocated) == 1, (torch.__version__, events)
    freed = [event for event in events if event.size == -KNOWN_BYTES]
    assert len(freed) == 1, (torch.__version__, events)
    assert freed[0].ptr == allocated[0].ptr
    assert freed[0].time_ns > allocated[0].time_ns


def test_events_are_kept_to_the_device_asked_for() -> None:
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        torch.empty(KNOWN_BYTES, dtype=torch.uint8)

    assert any(event.size == KNOWN_BYTES for event in allocation_events(prof, "cpu"))
    assert allocation_events(prof, "cuda") == []
