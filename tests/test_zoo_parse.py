"""shared_options.parse_shape and parse_batch_size: what the CLI and the plugin accept for sizes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.shared_options import MAX_BATCH_SIZE, MAX_SIDE, parse_batch_size, parse_shape


@pytest.mark.parametrize(
    "text, shape",
    [("224", (3, 224, 224)), ("224x160", (3, 224, 160)), (" 112 ", (3, 112, 112)), ("32X48", (3, 32, 48))],
)
def test_parse_shape(text: str, shape: tuple[int, int, int]) -> None:
    assert parse_shape(text) == shape


@pytest.mark.parametrize("text", ["", "0", "-224", "224x", "x224", "224x0", "3x224x224", "224.0", "224,160", "big", "²²⁴"])
def test_parse_shape_rejects_with_the_text(text: str) -> None:
    with pytest.raises(UsageError, match="bad input shape") as error:
        parse_shape(text)
    assert repr(text) in str(error.value)


@given(st.integers(1, 10_000), st.integers(1, 10_000))
def test_parse_shape_round_trip(height: int, width: int) -> None:
    assert parse_shape(f"{height}x{width}") == (3, height, width)
    assert parse_shape(str(height)) == (3, height, height)


@pytest.mark.parametrize("text, size", [("1", 1), ("128", 128), (" 8 ", 8)])
def test_parse_batch_size(text: str, size: int) -> None:
    assert parse_batch_size(text) == size


@pytest.mark.parametrize("text", ["0", "-1", "1.5", "", "eight", "1e3", "٣"])
def test_parse_batch_size_rejects_with_the_text(text: str) -> None:
    with pytest.raises(UsageError, match="bad batch size") as error:
        parse_batch_size(text)
    assert repr(text) in str(error.value)


@given(st.integers(1, 10**30))
def test_a_batch_size_parses_within_its_bound_or_is_one_line_naming_it(size: int) -> None:
    try:
        parsed = parse_batch_size(str(size))
    except UsageError as error:
        assert size > MAX_BATCH_SIZE and f"up to {MAX_BATCH_SIZE}" in str(error) and "\n" not in str(error)
    else:
        assert parsed == size <= MAX_BATCH_SIZE


@given(st.integers(1, 10**30), st.integers(1, 10**30))
def test_a_shape_parses_within_its_bound_or_is_one_line_naming_it(height: int, width: int) -> None:
    try:
        shape = parse_shape(f"{height}x{width}")
    except UsageError as error:
        assert max(height, width) > MAX_SIDE and f"up to {MAX_SIDE}" in str(error) and "\n" not in str(error)
    else:
        assert shape == (3, height, width) and max(height, width) <= MAX_SIDE


def test_the_largest_batch_of_the_largest_shape_fits_a_tensor() -> None:
    import torch

    # torch counts bytes in int64: any float32 input within the bounds can be described (meta: no memory)
    shape = (MAX_BATCH_SIZE, 3, MAX_SIDE, MAX_SIDE)
    assert torch.empty(shape, device="meta", dtype=torch.float32).numel() == MAX_BATCH_SIZE * 3 * MAX_SIDE**2
    with pytest.raises(RuntimeError, match="overflow"):  # and the bounds are no tighter than that needs
        torch.empty((MAX_BATCH_SIZE, 3, 4 * MAX_SIDE, 4 * MAX_SIDE), device="meta", dtype=torch.float32)
