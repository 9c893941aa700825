"""Accuracy on real data: scikit-learn's handwritten digits (shipped with the package), and image folders.

The digits test is the suite's path end to end on data whose labels mean something: a small CNN is
trained for a few seconds, measured with ``evaluate``, pruned with ``prune_to_flops`` (the call the
suite makes) and measured again with the same ``evaluate``.
"""

import json

import numpy as np
import pytest
import torch
from digits import DIGIT_SHAPE, digits, one_thread, train_net, trained  # noqa: E402, F401 (fixtures)
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader

from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.measurement import Accuracy
from pytest_edgeprof.models.accuracy import EvalResult, evaluate, image_folder_loader, preprocessing
from pytest_edgeprof.models.image_folder import check_image_folder, parse_eval_limit
from pytest_edgeprof.models.prune import prune_to_flops
from pytest_edgeprof.models.zoo import build_model

pytestmark = pytest.mark.usefixtures("one_thread")


def test_trained_digits_cnn_is_far_above_chance(trained, digits):
    accuracy = evaluate(trained, DataLoader(digits[1], batch_size=128), eval_set="digits-test")
    assert accuracy.images == len(digits[1]) == 397
    assert accuracy.top1 > 90  # chance is 10 %
    assert accuracy.top5 >= accuracy.top1
    assert accuracy.eval_set == "digits-test"


@pytest.mark.parametrize("method", ["magnitude", "taylor"])
def test_pruned_digits_cnn_through_the_suites_path(trained, digits, method):
    train, test = digits
    example = DataLoader(train, batch_size=256) if method == "taylor" else None
    result = prune_to_flops(trained, 0.5, DIGIT_SHAPE, method=method, example_data=example)
    assert abs(result.achieved - 0.5) <= 0.01
    assert result.params_after < result.params_before
    pruned = evaluate(result.model, DataLoader(test, batch_size=128), eval_set="digits-test")
    base = evaluate(trained, DataLoader(test, batch_size=128), eval_set="digits-test")
    assert pruned.images == base.images
    assert 0 <= pruned.top1 <= pruned.top5 <= 100  # one-shot pruning, no fine-tuning: measured, not bounded
    # Two epochs of fine-tuning bring the pruned model back: what pruning removed was redundant structure.
    recovered = evaluate(train_net(result.model, train, epochs=2), DataLoader(test, batch_size=128))
    assert recovered.top1 > 90


def test_evaluate_counts_top1_and_top5_exactly():
    # Logits that rank class i first for sample i, class (i + 1) second, and so on.
    class Fixed(nn.Module):
        def forward(self, x):
            return -((torch.arange(10) - x[:, :1]) % 10).float()

    inputs = torch.arange(6, dtype=torch.float32).unsqueeze(1)
    labels = torch.tensor([0, 2, 2, 9, 4, 1])  # first guess: 0, 1 (2nd guess 2), 2, 3 (no), 4, 5 (no)
    accuracy = evaluate(Fixed(), [(inputs, labels)])
    assert accuracy == EvalResult(top1=100 * 3 / 6, top5=100 * 4 / 6, images=6, eval_set="")
    assert accuracy.record() == Accuracy(top1=50.0, top5=66.6667, eval_set="")


def test_evaluate_restores_training_mode(trained, digits):
    trained.train()
    evaluate(trained, DataLoader(digits[1], batch_size=128))
    assert trained.training
    trained.eval()


def test_empty_loader_and_out_of_range_labels_are_usage_errors(trained):
    with pytest.raises(UsageError, match="has no images"):
        evaluate(trained, [], eval_set="nothing")
    with pytest.raises(UsageError, match="label 12 is outside the model's 10 classes; give a class-index file"):
        evaluate(trained, [(torch.zeros(2, *DIGIT_SHAPE), torch.tensor([1, 12]))])


# --- image folders ---------------------------------------------------------------------------------


def _image_folder(root, classes=("cat", "ant", "bee"), per_class=3, size=(40, 56)):
    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 255, (*size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def _labels(loader):
    return [int(label) for _, labels in loader for label in labels]


def test_folders_sorted_by_name_are_the_classes_without_an_index(tmp_path):
    root = _image_folder(tmp_path / "val")
    loader, eval_set = image_folder_loader(root, "mobilenet_v3_small", (3, 32, 48), batch_size=4)
    batches = list(loader)
    assert batches[0][0].shape == (4, 3, 32, 48) and batches[0][0].dtype == torch.float32
    assert _labels(loader) == [0, 0, 0, 1, 1, 1, 2, 2, 2]  # ant, bee, cat
    assert eval_set == "val: 9 images, 3 classes"
    assert check_image_folder(root) == 9


def test_class_index_file_maps_folders_to_indices(tmp_path):
    root = _image_folder(tmp_path / "val")
    index = tmp_path / "index.json"
    index.write_text(json.dumps({"7": ["ant", "an ant"], "2": ["bee", "a bee"], "5": "cat"}))
    loader, _ = image_folder_loader(root, "mobilenet_v3_small", (3, 32, 32), class_index=index)
    assert _labels(loader) == [7, 7, 7, 2, 2, 2, 5, 5, 5]


def test_class_index_json_inside_the_folder_is_used(tmp_path):
    root = _image_folder(tmp_path / "val", classes=("a", "b"))
    (root / "class_index.json").write_text(json.dumps({"0": ["b", "bee"], "1": ["a", "ant"]}))
    loader, _ = image_folder_loader(root, "mobilenet_v3_small", (3, 32, 32))
    assert _labels(loader) == [1, 1, 1, 0, 0, 0]


def test_limit_takes_images_round_robin_over_classes_and_says_so(tmp_path):
    root = _image_folder(tmp_path / "val")
    loader, eval_set = image_folder_loader(root, "mobilenet_v3_small", (3, 32, 32), limit=4)
    assert _labels(loader) == [0, 1, 2, 0]
    assert eval_set == "val: first 4 of 9 images (limit 4, round-robin over classes), 3 classes"
    _, whole = image_folder_loader(root, "mobilenet_v3_small", (3, 32, 32), limit=50)
    assert whole == "val: 9 images, 3 classes"


def test_preprocessing_follows_the_weights_transforms():
    steps = preprocessing("resnet50", (3, 160, 160)).transforms
    resize, crop, normalize = steps[1], steps[2], steps[4]
    assert resize.size == [round(160 * 232 / 224)]  # resnet50's DEFAULT (V2) weights resize 232, crop 224
    assert list(crop.size) == [160, 160]
    assert normalize.mean == [0.485, 0.456, 0.406]


def test_a_real_model_evaluates_on_the_folder(tmp_path):
    root = _image_folder(tmp_path / "val")
    loader, eval_set = image_folder_loader(root, "mobilenet_v3_small", (3, 32, 32), limit=5, batch_size=2)
    accuracy = evaluate(build_model("mobilenet_v3_small"), loader, eval_set=eval_set, progress=True)
    assert accuracy.images == 5 and accuracy.eval_set == eval_set
    assert 0 <= accuracy.top1 <= accuracy.top5 <= 100


@pytest.mark.parametrize(
    "setup, message",
    [
        ("missing", "--eval-data .*nowhere: no such folder; expected an ImageFolder"),
        ("file", "--eval-data .*plain.txt: not a folder"),
        ("no-classes", "--eval-data .*empty: no class sub-folders"),
        ("no-images", "--eval-data .*noimages: no images in its class folders"),
        ("bad-json", r"class index .*index.json: cannot read it \(Expecting"),
        ("bad-shape", r"class index .*index.json: entry 'zero': \['ant'\] is not index -> folder"),
        ("list", r"class index .*index.json: holds a list, not a mapping"),
        ("unknown-folder", r"class index .*index.json does not name the folder 'bee' and 1 more"),
    ],
)
def test_bad_folders_and_class_indices_are_one_line_usage_errors(tmp_path, setup, message):
    index = tmp_path / "index.json"
    root = {
        "missing": tmp_path / "nowhere",
        "file": tmp_path / "plain.txt",
        "no-classes": tmp_path / "empty",
        "no-images": tmp_path / "noimages",
    }.get(setup, tmp_path / "val")
    if setup == "file":
        root.write_text("x")
    elif setup == "no-classes":
        root.mkdir()
    elif setup == "no-images":
        (root / "ant").mkdir(parents=True)
        (root / "ant" / "notes.txt").write_text("x")
    elif setup != "missing":
        _image_folder(root)
        index.write_text(
            {
                "bad-json": "{not json",
                "bad-shape": json.dumps({"zero": ["ant"]}),
                "list": json.dumps(["ant", "bee"]),
                "unknown-folder": json.dumps({"0": ["ant", "an ant"]}),
            }[setup]
        )
    index = index if index.exists() else None
    with pytest.raises(UsageError, match=message) as error:
        image_folder_loader(root, "mobilenet_v3_small", (3, 32, 32), class_index=index)
    assert "\n" not in str(error.value)
    with pytest.raises(UsageError, match=message):
        check_image_folder(root, index)  # what the plugin runs before collecting anything


@pytest.mark.parametrize("limit", [0, -3, True, 2.5])
def test_bad_limits(tmp_path, limit):
    with pytest.raises(UsageError, match="--eval-limit"):
        image_folder_loader(_image_folder(tmp_path / "val"), "mobilenet_v3_small", (3, 32, 32), limit=limit)


def test_eval_limit_option_text():
    assert parse_eval_limit(" 500 ") == 500
    for text in ("0", "-1", "many", "1.5"):
        with pytest.raises(UsageError, match=f"--eval-limit '{text}': expected a positive number of images"):
            parse_eval_limit(text)
