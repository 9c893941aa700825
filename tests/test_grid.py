import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_edgeprof.axes import PRECISIONS, RUNTIMES, check_extras
from pytest_edgeprof.device import cpu_profile
from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.measurement import Cell
from pytest_edgeprof.models.grid import (
    STUDY_GRID,
    Grid,
    default_grid,
    parse_batch_sizes,
    parse_models,
    parse_precisions,
    parse_runtimes,
    parse_shape,
    parse_shapes,
)


def test_cpu_default_grid_covers_the_study_models_at_two_batches_and_two_shapes():
    grid = default_grid(cpu_profile())
    assert set(grid.models) == {"vgg16", "resnet50", "mobilenet_v3_large"}
    assert len(grid.batch_sizes) >= 2 and len(grid.shapes) >= 2


def test_study_grid_is_the_full_sweep():
    assert default_grid(cpu_profile(), "study") is STUDY_GRID
    assert STUDY_GRID.batch_sizes == (1, 8, 16, 32, 64, 128)
    assert [s[1] for s in STUDY_GRID.shapes] == [224, 192, 160, 112]
    assert len(STUDY_GRID.cells()) == 3 * 6 * 4


def test_cells_have_readable_ids_with_batches_ascending_per_model_and_shape():
    cells = default_grid(cpu_profile()).cells()
    ids = [c.id for c in cells]
    assert ids[0] == "vgg16-base-b1-224x224" and ids[1] == "vgg16-base-b4-224x224"


def test_shapes_accept_square_and_height_by_width():
    assert parse_shapes("224, 224x160") == ((3, 224, 224), (3, 224, 160))


@pytest.mark.parametrize("bad", ["", "224,", "22a", "0", "224x", "x224", "-5", "2.5"])
def test_bad_shapes_name_the_text(bad):
    with pytest.raises(UsageError, match="shape|empty item"):
        parse_shapes(bad)


@pytest.mark.parametrize("bad", ["0", "-1", "1.5", "eight", "1,,2"])
def test_bad_batch_sizes_name_the_value(bad):
    with pytest.raises(UsageError) as excinfo:
        parse_batch_sizes(bad)
    assert "positive integer" in str(excinfo.value) or "empty item" in str(excinfo.value)


def test_unknown_model_suggests_closest_names():
    with pytest.raises(UsageError, match="did you mean resnet50"):
        parse_models("resnt50")
    assert parse_models("ResNet18, vgg16") == ("resnet18", "vgg16")


@given(st.integers(1, 4096), st.integers(1, 4096))
def test_shape_round_trips(height, width):
    assert parse_shape(f"{height}x{width}") == (3, height, width)


def test_a_default_precision_and_runtime_stay_out_of_the_id():
    assert Cell("resnet50", "base", 8, (3, 224, 224)).id == "resnet50-base-b8-224x224"
    assert Cell("resnet50", "base", 8, (3, 224, 224), "int8", "onnxruntime").id == "resnet50-base-int8-onnxruntime-b8-224x224"
    assert Cell("resnet50", "p50", 1, (3, 160, 160), "fp32", "compile").id == "resnet50-p50-compile-b1-160x160"


def test_each_configuration_runs_its_batches_in_a_row():
    grid = Grid(("resnet18",), (1, 4), ((3, 32, 32),), ("fp32", "int8"), ("eager", "onnxruntime"))
    assert [c.id for c in grid.cells()] == [
        "resnet18-base-b1-32x32", "resnet18-base-b4-32x32",
        "resnet18-base-onnxruntime-b1-32x32", "resnet18-base-onnxruntime-b4-32x32",
        "resnet18-base-int8-b1-32x32", "resnet18-base-int8-b4-32x32",
        "resnet18-base-int8-onnxruntime-b1-32x32", "resnet18-base-int8-onnxruntime-b4-32x32",
    ]


@given(st.lists(st.sampled_from(tuple(PRECISIONS)), min_size=1), st.booleans())
def test_precisions_parse_in_order_without_repeats(names, upper):
    text = ",".join(name.upper() if upper else name for name in names)
    assert parse_precisions(text) == tuple(dict.fromkeys(names))


@given(st.text(max_size=12))
def test_runtimes_accept_only_the_known_names(text):
    items = [item.strip().lower() for item in text.split(",")]
    if text.strip() and all(item in RUNTIMES for item in items):
        assert parse_runtimes(text) == tuple(dict.fromkeys(items))
    else:
        with pytest.raises(UsageError, match="--runtime .*(unknown|empty item).*eager, compile, onnxruntime, tensorrt"):
            parse_runtimes(text)


def test_a_runtime_whose_packages_are_missing_names_the_extra(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxscript" else real(name, *a))
    with pytest.raises(UsageError, match=r"--runtime onnxruntime needs onnxscript, not installed; pip install 'pytest-edgeprof\[onnx\]'"):
        check_extras(("fp32",), ("eager", "onnxruntime"))
    check_extras(("int8",), ("eager",))  # torchao is here
