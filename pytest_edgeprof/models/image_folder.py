"""Image folders checked without torch: an ImageFolder's class folders, images and class-index file.

``models/accuracy.py`` says how a folder is laid out and reads its images; the checks here need no
torch or torchvision, so ``--eval-data`` and ``--prune-data`` are checked when the plugin reads its
options (in every pytest run) without importing them.
"""

from __future__ import annotations

import json
from pathlib import Path

from pytest_edgeprof.errors import UsageError, first_line
from pytest_edgeprof.shared_options import parse_positive_int

# torchvision.datasets.folder.IMG_EXTENSIONS, written out so that checking a folder imports no
# torchvision; tests/test_import_cost.py checks that the two agree.
IMAGE_SUFFIXES = frozenset((".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"))


def check_image_folder(root: Path, class_index: Path | None = None, option: str = "--eval-data") -> int:
    """Check an evaluation folder (and class-index file) up front; the number of images, or ``UsageError``."""
    return sum(len(images) for images in labelled_images(Path(root).expanduser(), class_index, option))


def labelled_images(root: Path, class_index: Path | None, option: str) -> list[list[tuple[Path, int]]]:
    """Each class folder's images with their label, folders sorted by name."""
    if class_index is None and (root / "class_index.json").is_file():
        class_index = root / "class_index.json"
    folders = _class_folders(root, option)
    indices = _read_class_index(class_index, folders) if class_index else {f: i for i, f in enumerate(folders)}
    by_class = [[(path, indices[folder]) for path in _images(root / folder)] for folder in folders]
    if not any(by_class):
        raise UsageError(f"{option} {root}: no images in its class folders (accepted: {suffixes_text()})")
    return by_class


def _class_folders(root: Path, option: str) -> list[str]:
    if not root.is_dir():
        what = "not a folder" if root.exists() else "no such folder"
        raise UsageError(f"{option} {root}: {what}; expected an ImageFolder (one sub-folder of images per class)")
    folders = sorted(entry.name for entry in root.iterdir() if entry.is_dir() and not entry.name.startswith("."))
    if not folders:
        raise UsageError(f"{option} {root}: no class sub-folders; expected {root}/<class>/<image>.jpg")
    return folders


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _read_class_index(path: Path, folders: list[str]) -> dict[str, int]:
    """Folder name -> class index, from ``{"0": ["n01440764", "tench"], ...}`` or ``{"0": "n01440764", ...}``."""
    path = Path(path).expanduser()
    form = 'JSON like {"0": ["n01440764", "tench"], ...} or {"0": "n01440764", ...}'
    try:
        raw = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise UsageError(f"class index {path}: cannot read it ({first_line(error)}); expected {form}") from None
    if not isinstance(raw, dict) or not raw:
        raise UsageError(f"class index {path}: holds a {type(raw).__name__}, not a mapping; expected {form}")
    indices: dict[str, int] = {}
    for key, value in raw.items():
        folder = value[0] if isinstance(value, list) and value else value
        if not (isinstance(key, str) and key.strip().isascii() and key.strip().isdigit() and isinstance(folder, str)):
            raise UsageError(f"class index {path}: entry {key!r}: {value!r} is not index -> folder; expected {form}")
        indices[folder] = int(key)
    unknown = [folder for folder in folders if folder not in indices]
    if unknown:
        more = f" and {len(unknown) - 1} more" if len(unknown) > 1 else ""
        raise UsageError(f"class index {path} does not name the folder {unknown[0]!r}{more}")
    return indices


def round_robin(by_class: list[list[tuple[Path, int]]]) -> list[tuple[Path, int]]:
    longest = max(len(images) for images in by_class)
    return [images[i] for i in range(longest) for images in by_class if i < len(images)]


def suffixes_text() -> str:
    return " ".join(sorted(IMAGE_SUFFIXES))


def parse_eval_limit(text: str) -> int:
    """Parse ``--eval-limit``: a positive number of images."""
    return parse_positive_int(text, f"--eval-limit {text!r}: expected a positive number of images, e.g. 500")


def parse_image_folder(text: str, option: str = "--eval-data") -> Path:
    """An option's ImageFolder path, checked up front so a bad folder stops the run before anything is measured."""
    root = Path(text).expanduser()
    check_image_folder(root, option=option)
    return root


def parse_eval_data(text: str) -> Path:
    """``--eval-data``: an ImageFolder (classifiers), a COCO folder (detectors: ``annotations.json``) or
    an images/ and masks/ folder (segmenters), laid out as ``models/task_accuracy.py`` says."""
    root = Path(text).expanduser()
    if not root.is_dir():
        raise UsageError(f"--eval-data {root}: {'not a folder' if root.exists() else 'no such folder'}; expected an "
                         "ImageFolder (classifiers), a folder with annotations.json (detectors) or with images/ and masks/ (segmenters)")
    if (root / "annotations.json").is_file():
        check_coco_folder(root)
    elif (root / "masks").is_dir():
        check_mask_folder(root)
    else:
        check_image_folder(root)
    return root


def check_coco_folder(root: Path) -> int:
    """The images ``annotations.json`` names are there; their number, or ``UsageError``."""
    path = root / "annotations.json"
    try:
        coco = json.loads(path.read_text())
        files = [root / image["file_name"] for image in coco["images"]]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError, KeyError, TypeError) as error:
        raise UsageError(f"--eval-data {path}: not COCO annotations ({first_line(error)}); expected "
                         '{"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [{"image_id": 1, "bbox": [x, y, w, h], '
                         '"category_id": 1}]}') from None
    missing = [f for f in files if not f.is_file()]
    if missing or not files:
        what = f"{missing[0]} is missing" if missing else "it names no images"
        raise UsageError(f"--eval-data {path}: {what}; expected each file_name under {root}")
    return len(files)


def check_mask_folder(root: Path) -> int:
    """Every image of ``root/images`` has ``root/masks/<name>.png``; their number, or ``UsageError``."""
    images = sorted(p for p in (root / "images").glob("*") if p.suffix.lower() in IMAGE_SUFFIXES) if (root / "images").is_dir() else []
    missing = [p for p in images if not (root / "masks" / f"{p.stem}.png").is_file()]
    if missing or not images:
        what = f"no mask masks/{missing[0].stem}.png for images/{missing[0].name}" if missing else "no images in images/"
        raise UsageError(f"--eval-data {root}: {what}; expected images/<name>.jpg and masks/<name>.png (class index per pixel)")
    return len(images)


def parse_prune_data(text: str) -> Path:
    """``--prune-data``: the ImageFolder Taylor importance reads."""
    return parse_image_folder(text, "--prune-data")


def parse_calib_data(text: str) -> Path:
    """``--calib-data``: the ImageFolder int8 calibration reads."""
    return parse_image_folder(text, "--calib-data")
