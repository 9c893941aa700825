"""Pins torch's private dispatch API that pytest_edgeprof.compat.torch_dispatch uses.

If one of these fails, the installed torch changed that API: fix the compat module before trusting
the roofline's kernels (measure/roofline.py).
"""

from __future__ import annotations

import torch

from pytest_edgeprof.compat.torch_dispatch import OpRecorder, is_view, writes_in_place


def test_the_ops_of_a_small_forward_are_seen_once_each_with_their_output() -> None:
    seen = []
    x = torch.ones(2, 3, device="meta")
    with OpRecorder(lambda op, args, kwargs, out: seen.append((str(op), tuple(out.shape)))):
        torch.relu(x.t() @ x)
    assert seen == [("aten.t.default", (3, 2)), ("aten.mm.default", (3, 3)), ("aten.relu.default", (3, 3))]


def test_views_and_in_place_writes_are_told_apart() -> None:
    aten = torch.ops.aten
    assert is_view(aten.t.default) and is_view(aten.view.default) and is_view(aten.expand.default)
    assert writes_in_place(aten.relu_.default) and not is_view(aten.relu_.default)
    assert not is_view(aten.convolution.default) and not writes_in_place(aten.convolution.default)
