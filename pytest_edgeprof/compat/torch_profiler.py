"""Everything edgeprof reads from torch's private profiler API: the allocation events of a profile.

torch.profiler's public API gives memory only as totals per operator; the CPU peak in
measure/memory.py needs each allocation and free with its pointer and time, which only the
profiler's event tree holds (``prof.profiler.kineto_results.experimental_event_tree()``, nodes of
type ``torch._C._profiler._ProfilerEvent`` tagged ``_EventType.Allocation``). All of these are
private and may change in any torch release.

Checked on torch 2.14.1, the version pinned in pyproject.toml. Not yet checked on torch 2.11, the
version on the GPU machine. tests/test_compat_torch_profiler.py pins what is used here: on a torch
that changed it, that test fails, instead of memory.py reporting a wrong peak.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from torch._C._profiler import _EventType, _ExtraFields_Allocation, _ProfilerEvent
from torch.profiler import profile


class AllocationEvent(NamedTuple):
    """One allocation (``size`` > 0) or free (``size`` < 0) that the profiler recorded."""

    time_ns: int
    ptr: int  # the address; a free carries the address of the block it frees
    size: int  # bytes


def allocation_events(prof: profile, device_type: str) -> list[AllocationEvent]:
    """The allocations and frees on ``device_type`` ("cpu", "cuda") of a finished profile, in no order.

    The profile must have been run with ``profile_memory=True``.
    """
    if prof.profiler is None or prof.profiler.kineto_results is None:
        raise ValueError("allocation_events needs a profile that has run and finished")
    tree = prof.profiler.kineto_results.experimental_event_tree()
    return [
        AllocationEvent(event.start_time_ns, fields.ptr, fields.alloc_size)
        for event, fields in _allocations(tree)
        if fields.device.type == device_type
    ]


def _allocations(nodes: list[_ProfilerEvent]) -> Iterator[tuple[_ProfilerEvent, _ExtraFields_Allocation]]:
    for event in _walk(nodes):
        # an Allocation event's extra fields are an _ExtraFields_Allocation; isinstance tells mypy so
        if event.tag == _EventType.Allocation and isinstance(event.extra_fields, _ExtraFields_Allocation):
            yield event, event.extra_fields


def _walk(nodes: list[_ProfilerEvent]) -> Iterator[_ProfilerEvent]:
    stack = list(nodes)
    while stack:
        node = stack.pop()
        yield node
        stack.extend(node.children)
