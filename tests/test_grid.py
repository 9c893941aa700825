import pytest
from hypothesis import given, strategies as st

from pytest_edgeprof.device import cpu_profile
from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.models.grid import STUDY_GRID, default_grid, parse_batch_sizes, parse_models, parse_shape, parse_shapes


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
