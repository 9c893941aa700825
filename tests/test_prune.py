"""FLOPs-targeted structured pruning, the variant cache and `edgeprof prune`, on real torchvision models.

The full sweep (the study's three models at 0.05..0.8 and other torchvision CNNs) is
tools/check_prune.py; here small models and inputs keep the file fast.
"""

import json
import warnings
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

from pytest_edgeprof.cli import main
from pytest_edgeprof.errors import UsageError
from pytest_edgeprof.measure.flops import count_cost
from pytest_edgeprof.models import prune
from pytest_edgeprof.models.zoo import build_model

SMALL_INPUT = (3, 64, 64)


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread):
    """Tiny batches on a small, shared CPU run much faster on one thread than fighting over two."""


@pytest.fixture(scope="module")
def resnet18():
    return build_model("resnet18")


@pytest.fixture(scope="module")
def mobilenet():
    return build_model("mobilenet_v3_small")


# --- targets ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("target, name", [(0.5, "p50"), (0.25, "p25"), (0.05, "p5"), (0.8, "p80"), (0.125, "p12.5")])
def test_variant_names(target, name):
    assert prune.variant_name(target) == name


@pytest.mark.parametrize("target", [0.05, 0.125, 0.25, 0.5, 0.8])
def test_variant_names_read_back(target):
    assert prune.variant_target(prune.variant_name(target)) == target
    assert prune.variant_target("base") is None


@pytest.mark.parametrize("variant", ["p", "p90", "x50", "pfifty"])
def test_bad_variant_ids(variant):
    with pytest.raises(UsageError, match=f"variant '{variant}' is not 'base' or p<percent"):
        prune.variant_target(variant)


def test_prune_targets_parse_in_order_without_repeats():
    assert prune.parse_prune_targets("0.25, 0.5,0.25") == (0.25, 0.5)
    assert prune.parse_prune_targets("0.05,0.8") == (0.05, 0.8)


@pytest.mark.parametrize(
    "text, message",
    [
        ("0.9", r"--prune '0.9': 0.9 is out of range; expected a fraction of FLOPs to remove from 0.05 to 0.8"),
        ("50", r"50 is out of range \(a percent\? use 0.5\)"),
        ("0.25,half", r"'half' is not a number"),
        ("", r"'' is not a number"),
        ("0.01", r"0.01 is out of range"),
    ],
)
def test_bad_prune_targets_are_one_line_usage_errors(text, message):
    with pytest.raises(UsageError, match=message) as error:
        prune.parse_prune_targets(text)
    assert "\n" not in str(error.value)


# --- pruning to a FLOPs target ---------------------------------------------------------------------


@pytest.mark.parametrize("target", [0.25, 0.5, 0.8])
def test_resnet18_hits_the_target_within_one_point(resnet18, target):
    result = prune.prune_to_flops(resnet18, target, SMALL_INPUT)
    base, pruned = count_cost(resnet18, SMALL_INPUT), count_cost(result.model, SMALL_INPUT)
    assert abs(result.achieved - target) <= 0.01
    assert result.achieved == pytest.approx(1 - pruned.flops / base.flops)
    assert (result.flops_before, result.flops_after) == (base.flops, pruned.flops)
    assert (result.params_before, result.params_after) == (base.params, pruned.params)
    assert result.params_after < result.params_before
    assert result.method == "magnitude" and not result.from_cache
    pruning = result.pruning()
    assert (pruning.target, pruning.method) == (target, "magnitude")
    assert pruning.achieved == pytest.approx(result.achieved, abs=1e-6)


def test_pruned_model_runs_keeps_its_classes_and_the_original_is_untouched(resnet18):
    before = {name: tensor.clone() for name, tensor in resnet18.state_dict().items()}
    result = prune.prune_to_flops(resnet18, 0.5, SMALL_INPUT)
    assert not result.model.training
    assert result.model.fc.out_features == 1000
    with torch.inference_mode():
        assert result.model(torch.randn(2, *SMALL_INPUT)).shape == (2, 1000)
    for name, tensor in resnet18.state_dict().items():
        assert torch.equal(tensor, before[name])


def test_depthwise_and_squeeze_excite_blocks_prune_exactly(mobilenet):
    result = prune.prune_to_flops(mobilenet, 0.5, SMALL_INPUT)
    assert abs(result.achieved - 0.5) <= 0.01
    with torch.inference_mode():
        assert result.model(torch.randn(1, *SMALL_INPUT)).shape == (1, 1000)


def test_inplace_prunes_the_given_model():
    model = build_model("mobilenet_v3_small")
    result = prune.prune_to_flops(model, 0.3, SMALL_INPUT, inplace=True)
    assert result.model is model
    assert count_cost(model, SMALL_INPUT).flops == result.flops_after


@pytest.mark.parametrize("name", ["vgg16", "resnet50", "mobilenet_v3_large"])
def test_study_models_at_their_reference_input(name):
    model = build_model(name)
    result = prune.prune_to_flops(model, 0.5, (3, 224, 224))
    assert abs(result.achieved - 0.5) <= 0.01


def test_taylor_needs_example_data(resnet18):
    with pytest.raises(UsageError, match="'taylor' needs example data"):
        prune.prune_to_flops(resnet18, 0.5, SMALL_INPUT, method="taylor")


def test_unknown_method(resnet18):
    with pytest.raises(UsageError, match="'l1' is not known; accepted: magnitude, taylor"):
        prune.prune_to_flops(resnet18, 0.5, SMALL_INPUT, method="l1")


def test_taylor_ranks_by_gradients_of_example_batches(mobilenet):
    data = [(torch.randn(4, *SMALL_INPUT), torch.randint(0, 1000, (4,)))]
    result = prune.prune_to_flops(mobilenet, 0.25, SMALL_INPUT, method="taylor", example_data=data)
    assert abs(result.achieved - 0.25) <= 0.01
    assert result.method == "taylor"
    assert all(param.grad is None for param in result.model.parameters())


class _TinyTransformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Conv2d(3, 16, 4, stride=4)
        self.attention = nn.MultiheadAttention(16, 2, batch_first=True)
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        tokens = self.embed(x).flatten(2).transpose(1, 2)
        return self.head(self.attention(tokens, tokens, tokens)[0].mean(1))


class _TinyBlock(_TinyTransformer):
    """Attention, then an MLP as in a ViT block."""

    def __init__(self):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(16, 64), nn.GELU(), nn.Linear(64, 16))

    def forward(self, x):
        tokens = self.embed(x).flatten(2).transpose(1, 2)
        tokens = tokens + self.attention(tokens, tokens, tokens)[0]
        return self.head((tokens + self.mlp(tokens)).mean(1))


class TinyAttention(nn.Module):
    """An attention written with plain Linear layers, as MaxViT's: its width is kept."""

    def __init__(self):
        super().__init__()
        self.qkv, self.proj = nn.Linear(16, 48), nn.Linear(16, 16)

    def forward(self, tokens):
        q, k, v = self.qkv(tokens).chunk(3, dim=-1)
        return self.proj(torch.softmax(q @ k.transpose(1, 2), dim=-1) @ v)


class _KeptAttentionBlock(_TinyBlock):
    def __init__(self, mlp: bool = True):
        super().__init__()
        self.attention, self.with_mlp = TinyAttention(), mlp

    def forward(self, x):
        tokens = self.embed(x).flatten(2).transpose(1, 2)
        tokens = tokens + self.attention(tokens)
        return self.head((tokens + self.mlp(tokens) if self.with_mlp else tokens).mean(1))


def _same_positions_in_every_head(removed: list[int], heads: int, width: int) -> bool:
    per_head = [sorted(i - head * width for i in removed if head * width <= i < (head + 1) * width) for head in range(heads)]
    return all(positions == per_head[0] for positions in per_head) and bool(per_head[0])


def test_a_vit_block_loses_the_same_positions_in_every_head():
    result = prune.prune_to_flops(_TinyBlock(), 0.3, (3, 32, 32))
    attention = result.model.attention
    assert abs(result.achieved - 0.3) <= 0.01
    assert attention.num_heads == 2 and attention.embed_dim < 16 and attention.head_dim == attention.embed_dim // 2
    assert attention.in_proj_weight.shape == (3 * attention.embed_dim, attention.embed_dim)
    embedding = [idxs for name, out, idxs in result.history if name != "mlp.0"]  # the MLP's hidden layer is its own group
    assert len(embedding) == 1 and _same_positions_in_every_head(embedding[0], heads=2, width=8)
    assert result.model.head.out_features == 10
    result.model(torch.randn(2, 3, 32, 32))


def test_other_attention_keeps_its_width_and_the_mlp_is_pruned():
    result = prune.prune_to_flops(_KeptAttentionBlock(), 0.3, (3, 32, 32))
    assert abs(result.achieved - 0.3) <= 0.01
    assert (result.model.attention.qkv.out_features, result.model.attention.proj.in_features) == (48, 16)
    assert result.model.embed.out_channels == 16 and result.model.mlp[0].out_features < 64
    result.model(torch.randn(2, 3, 32, 32))


@pytest.mark.parametrize("name", ["swin_t", "vit_b_16", "maxvit_t"])
def test_transformers_are_cut_in_their_heads_and_reload_identically(name, tmp_path):
    first = prune.pruned_model(name, 0.3, cache_dir=tmp_path)
    assert abs(first.achieved - 0.3) <= 0.01
    again = prune.pruned_model(name, 0.3, cache_dir=tmp_path)
    assert again.from_cache
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        assert torch.allclose(first.model(x), again.model(x), atol=1e-5)
    built = build_model(name)
    for before, after in zip(_attentions(built), _attentions(again.model)):
        assert after[0] == before[0] and after[1] < before[1]  # as many heads as before, each narrower
    assert count_cost(again.model, (3, 224, 224)).flops == first.flops_after


def _attentions(model):
    """(heads, width) of each attention: ViT's nn.MultiheadAttention, Swin's and MaxViT's own."""
    found = []
    for m in model.modules():
        if isinstance(m, nn.MultiheadAttention):
            found.append((m.num_heads, m.embed_dim))
        elif type(m).__name__ == "ShiftedWindowAttention":
            found.append((m.num_heads, m.proj.out_features))
        elif type(m).__name__ == "RelativePositionalMultiHeadAttention":
            found.append((m.n_heads, m.merge.out_features))
            assert m.head_dim * m.n_heads == m.merge.in_features
    assert found
    return found


@pytest.mark.parametrize(
    "model, reason",
    [
        (_KeptAttentionBlock(mlp=False), r"no channel group it can prune \(a model with attention is pruned in its MLPs' hidden layers only"),
        (nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 10)), "no channel group it can prune"),
        (nn.Sequential(nn.Conv2d(3, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 6 * 6, 10)), "at most 50.0% of the FLOPs can be removed"),
    ],
    ids=["kept-attention", "classifier-only", "too-few-channels"],
)
def test_models_that_cannot_be_pruned_say_why(model, reason):
    with pytest.raises(prune.PruneUnsupported, match=reason):
        prune.prune_to_flops(model, 0.8, (3, 8, 8))


# --- the cache -------------------------------------------------------------------------------------


def test_cache_folder_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert prune.default_cache_dir() == tmp_path / "pytest-edgeprof" / "variants"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert prune.default_cache_dir() == Path.home() / ".cache" / "pytest-edgeprof" / "variants"


def _outputs(model):
    with torch.inference_mode():
        return model(torch.randn(2, *SMALL_INPUT, generator=torch.Generator().manual_seed(1)))


def test_variant_is_written_once_and_reloaded_identically(tmp_path):
    first = prune.pruned_model("resnet18", 0.5, cache_dir=tmp_path)
    entries = list(tmp_path.glob("*.pt"))
    assert not first.from_cache and len(entries) == 1
    assert entries[0].name.startswith("resnet18-p50-magnitude-")
    again = prune.pruned_model("resnet18", 0.5, cache_dir=tmp_path)
    assert again.from_cache and list(tmp_path.glob("*.pt")) == entries
    assert (again.achieved, again.params_after, again.flops_after) == (first.achieved, first.params_after, first.flops_after)
    assert not again.model.training
    assert all(t.device.type == "cpu" for t in again.model.state_dict().values())
    assert torch.allclose(_outputs(first.model), _outputs(again.model))
    assert count_cost(again.model, (3, 224, 224)).flops == first.flops_after


def test_cache_key_separates_targets_and_methods(tmp_path):
    prune.pruned_model("mobilenet_v3_small", 0.25, cache_dir=tmp_path)
    prune.pruned_model("mobilenet_v3_small", 0.5, cache_dir=tmp_path)
    names = sorted(p.name.rsplit("-", 1)[0] for p in tmp_path.glob("*.pt"))
    assert names == ["mobilenet_v3_small-p25-magnitude", "mobilenet_v3_small-p50-magnitude"]


def test_corrupt_cache_entry_is_named_and_rebuilt(tmp_path):
    first = prune.pruned_model("mobilenet_v3_small", 0.5, cache_dir=tmp_path)
    entry = next(tmp_path.glob("*.pt"))
    entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])
    with pytest.warns(prune.PruneCacheWarning, match=f"cache entry {entry} is unreadable .*rebuilding it"):
        rebuilt = prune.pruned_model("mobilenet_v3_small", 0.5, cache_dir=tmp_path)
    assert not rebuilt.from_cache and rebuilt.achieved == first.achieved
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert prune.pruned_model("mobilenet_v3_small", 0.5, cache_dir=tmp_path).from_cache


class _Planted:
    """An object whose unpickling would leave a file behind."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "unpickled"))


def test_loading_never_unpickles_foreign_objects(tmp_path):
    first = prune.pruned_model("mobilenet_v3_small", 0.5, cache_dir=tmp_path / "cache")
    entry = next((tmp_path / "cache").glob("*.pt"))
    marker = tmp_path / "marker"
    torch.save({"state_dict": _Planted(marker)}, entry)
    with pytest.warns(prune.PruneCacheWarning, match="unreadable"):
        rebuilt = prune.pruned_model("mobilenet_v3_small", 0.5, cache_dir=tmp_path / "cache")
    assert not marker.exists()
    assert rebuilt.params_after == first.params_after


def test_a_variant_file_edgeprof_did_not_write_there_is_rebuilt_not_loaded(tmp_path):
    """A shared or restored cache: a valid variant file, even, is loaded only under the digest this user's
    edgeprof recorded when it wrote it there (weights_only is not the only guard)."""
    first = prune.pruned_model("mobilenet_v3_small", 0.5, cache_dir=tmp_path / "cache")
    (entry,) = (tmp_path / "cache").glob("*.pt")
    prune.save_variant(first, tmp_path / "elsewhere.pt")
    entry.write_bytes((tmp_path / "elsewhere.pt").read_bytes())  # as another machine's cache would hold it
    entry.with_name(entry.name + ".hmac").unlink(missing_ok=True)
    with pytest.warns(prune.PruneCacheWarning, match=f"cache entry {entry} is unreadable .no digest was recorded"):
        rebuilt = prune.pruned_model("mobilenet_v3_small", 0.5, cache_dir=tmp_path / "cache")
    assert not rebuilt.from_cache
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert prune.pruned_model("mobilenet_v3_small", 0.5, cache_dir=tmp_path / "cache").from_cache


def test_save_and_load_a_variant_file(tmp_path):
    result = prune.pruned_model("mobilenet_v3_small", 0.25, cache_dir=tmp_path / "cache")
    path = prune.save_variant(result, tmp_path / "small-p25.pt")
    loaded = prune.load_variant(path)
    assert (loaded.model_name, loaded.target, loaded.achieved) == ("mobilenet_v3_small", 0.25, result.achieved)
    assert torch.allclose(_outputs(result.model), _outputs(loaded.model))


def test_a_model_pruned_by_hand_cannot_be_saved_without_its_name(resnet18, tmp_path):
    result = prune.prune_to_flops(resnet18, 0.25, SMALL_INPUT)
    with pytest.raises(UsageError, match="only a pruned torchvision model"):
        prune.save_variant(result, tmp_path / "x.pt")


# --- edgeprof prune ----------------------------------------------------------------------------------


def test_cli_json_has_the_documented_keys(tmp_path, capsys):
    assert main(["prune", "mobilenet_v3_small", "--target", "0.5", "--json", "--cache-dir", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    row = json.loads(captured.out)
    assert {"model", "target", "achieved", "params_before", "params_after", "seconds"} <= row.keys()
    assert row["model"] == "mobilenet_v3_small" and row["target"] == 0.5
    assert abs(row["achieved"] - 0.5) <= 0.01
    assert "pruning mobilenet_v3_small to p50" in captured.err  # the progress bar, on stderr


def test_cli_prints_a_summary_and_writes_out(tmp_path, capsys):
    out = tmp_path / "variant.pt"
    args = ["prune", "mobilenet_v3_small", "--target", "0.25", "--cache-dir", str(tmp_path / "c"), "--out", str(out)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "mobilenet_v3_small p25 (magnitude): removed 2" in text and "params" in text and " s (pruned)" in text
    assert prune.load_variant(out).target == 0.25
    assert main(args) == 0
    assert "(loaded from the cache)" in capsys.readouterr().out


def test_cli_taylor_ranks_with_an_image_folder(tmp_path, capsys):
    for label in ("n01440764", "n01443537"):
        (tmp_path / "val" / label).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (80, 60), color=(40 * i, 90, 200)).save(tmp_path / "val" / label / f"{i}.jpg")
    args = ["prune", "mobilenet_v3_small", "--target", "0.25", "--method", "taylor", "--data", str(tmp_path / "val")]
    assert main([*args, "--data-limit", "3", "--json", "--cache-dir", str(tmp_path / "cache")]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["method"] == "taylor" and abs(row["achieved"] - 0.25) <= 0.01
    assert next((tmp_path / "cache").glob("*.pt")).name.startswith("mobilenet_v3_small-p25-taylor-")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--target", "0.9"], "argument --target: 0.9 is out of range"),
        (["--target", "0.5", "--method", "taylor"], "--method taylor needs --data DIR"),
        (["--target", "0.5", "--method", "random"], "argument --method: invalid choice: 'random'"),
    ],
)
def test_cli_usage_errors(args, message, capsys):
    assert main(["prune", "resnet18", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_cli_a_default_cache_below_a_file_is_one_line(tmp_path, monkeypatch, capsys):
    a_file = tmp_path / "not_a_folder"
    a_file.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(a_file))
    assert main(["prune", "mobilenet_v3_small", "--target", "0.5"]) == 2
    err = capsys.readouterr().err
    assert err == (f"edgeprof: error: the default variant cache {a_file}/pytest-edgeprof/variants: {a_file} is a file, "
                   "so nothing can be written below it; give another path (--cache-dir DIR)\n")


def test_a_variant_whose_attention_is_cut_says_so_in_its_identity():
    from pytest_edgeprof.models.identity import model_identity

    assert model_identity("vit_b_16", None, "p30", "magnitude")["prune_attention"] == "heads"
    assert "prune_attention" not in model_identity("vit_b_16", None)  # the base variant is cut nowhere
    assert "prune_attention" not in model_identity("swin_v2_t", None, "p30", "magnitude")  # MLPs only, as before
    assert "prune_attention" not in model_identity("resnet18", None, "p30", "magnitude")


def test_the_identity_names_the_models_whose_attention_is_cut():
    import torchvision

    from pytest_edgeprof.models.identity import ATTENTION_CUT
    from pytest_edgeprof.models.prune.attention import cuts_attention

    transformers = [n for n in torchvision.models.list_models(torchvision.models) if "vit" in n or "swin" in n]
    with torch.device("meta"):
        for name in transformers:
            assert bool(ATTENTION_CUT.fullmatch(name)) == cuts_attention(torchvision.models.get_model(name)), name
