"""The preset schema (engine.config): defaults, every built-in preset, overrides and every error message."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import config
from engine.config import (
    SCHEMA,
    ConfigError,
    apply_overrides,
    available_presets,
    builtin_presets_dir,
    coerce,
    defaults,
    from_toml_dict,
    load_preset,
    parse_set,
    resolved_arch,
    to_toml,
)

PRESETS_DIR = Path(__file__).resolve().parents[1] / "presets"
BUILTIN = sorted(p.stem for p in PRESETS_DIR.glob("*.toml"))

EXPECTED_PRESETS = sorted(
    ["digits-unif60", "digits-clean", "digits-imb", "synthetic-smoke", "clothing1m", "places-lt"]
    + [
        f"{ds}-{s}"
        for ds in ("cifar10", "cifar100")
        for s in ("unif40", "unif60", "flip20", "flip40", "imb10", "imb20", "imb50", "imb100", "imb200")
    ]
    + [f"{ds}-mix-unif{r}-imb{i}" for ds in ("cifar10", "cifar100") for r in (40, 60) for i in (10, 100)]
)


@pytest.fixture(autouse=True)
def _no_user_presets(monkeypatch):
    monkeypatch.delenv("GDW_PRESETS", raising=False)


def error(fn, *args, **kwargs) -> str:
    """The ConfigError message of a call, checked to be one line."""
    with pytest.raises(ConfigError) as info:
        fn(*args, **kwargs)
    msg = str(info.value)
    assert "\n" not in msg and "\r" not in msg, msg
    return msg


# --- defaults and built-in presets -------------------------------------------------------------


def test_defaults_match_the_paper_protocol():
    cfg = defaults()
    assert cfg["title"] == "" and cfg["description"] == ""
    assert cfg["data"]["dataset"] == "digits"
    assert cfg["data"]["noise"] == "none" and cfg["data"]["noise_rate"] == 0.0
    assert cfg["data"]["imbalance"] == 1.0
    t = cfg["train"]
    assert (t["method"], t["epochs"], t["batch_size"], t["lr"]) == ("gdw", 80, 100, 0.1)
    assert (t["momentum"], t["weight_decay"], t["outer_lr"], t["clip"]) == (0.9, 5e-4, 100.0, 0.2)
    assert (t["vnet_lr"], t["vnet_weight_decay"], t["vnet_hidden"], t["final_epochs"]) == (1e-3, 1e-4, 100, 5)
    assert t["device"] == "auto" and t["seed"] == 1
    # every default is itself valid for its field
    for section, fields in SCHEMA.items():
        for key, f in fields.items():
            assert coerce(f"{section}.{key}", f.default) == f.default
    # defaults() hands out fresh dicts
    cfg["train"]["epochs"] = 3
    assert defaults()["train"]["epochs"] == 80


def test_builtin_presets_are_exactly_the_paper_settings():
    assert BUILTIN == EXPECTED_PRESETS
    assert sorted(available_presets()) == EXPECTED_PRESETS
    assert builtin_presets_dir().resolve() == PRESETS_DIR


@pytest.mark.parametrize("name", EXPECTED_PRESETS)
def test_every_preset_loads_and_documents_itself(name):
    cfg = load_preset(name)
    assert cfg["preset"] == name
    assert cfg["title"] and "\n" not in cfg["title"]
    desc = cfg["description"]
    assert "\n" not in desc and len(desc) > 80
    assert desc.count("Reference: ") == 1, "the table script reads the figure after 'Reference: '"
    # the key protocol values are written out in the file, not left to the defaults
    raw = tomllib.loads((PRESETS_DIR / f"{name}.toml").read_text())
    for key in ("dataset", "noise", "noise_rate", "imbalance", "meta_per_class"):
        assert key in raw["data"], key
    assert "arch" in raw["model"]
    for key in ("method", "epochs", "batch_size", "lr", "outer_lr"):
        assert key in raw["train"], key


@pytest.mark.parametrize("ds,classes_meta,outer", [("cifar10", 100, 100.0), ("cifar100", 10, 1000.0)])
def test_cifar_presets_follow_appendix_c(ds, classes_meta, outer):
    names = [n for n in EXPECTED_PRESETS if n.startswith(ds + "-")]
    assert len(names) == 13
    for n in names:
        cfg = load_preset(n)
        d, t = cfg["data"], cfg["train"]
        assert d["dataset"] == ds and d["meta_per_class"] == classes_meta
        assert cfg["model"]["arch"] == "resnet32" and resolved_arch(cfg) == "resnet32"
        assert (t["method"], t["epochs"], t["batch_size"], t["lr"], t["outer_lr"]) == ("gdw", 80, 100, 0.1, outer)
        assert (t["momentum"], t["weight_decay"]) == (0.9, 5e-4)
    assert load_preset(f"{ds}-unif60")["data"] == {**defaults()["data"], "dataset": ds, "noise": "unif",
                                                          "noise_rate": 0.6, "meta_per_class": classes_meta}
    assert (load_preset(f"{ds}-flip20")["data"]["noise"], load_preset(f"{ds}-flip20")["data"]["noise_rate"]) == ("flip", 0.2)
    for imb in (10, 20, 50, 100, 200):
        d = load_preset(f"{ds}-imb{imb}")["data"]
        assert (d["noise"], d["noise_rate"], d["imbalance"]) == ("none", 0.0, float(imb))
    d = load_preset(f"{ds}-mix-unif60-imb100")["data"]
    assert (d["noise"], d["noise_rate"], d["imbalance"]) == ("unif", 0.6, 100.0)


def test_reference_figures_are_the_papers():
    desc = {n: load_preset(n)["description"] for n in EXPECTED_PRESETS}
    assert "MW-Net 86.62, GDW 87.97" in desc["cifar10-unif40"]
    assert "2.56 points" in desc["cifar10-unif60"]
    table8 = {
        "cifar10-mix-unif40-imb10": "MW-Net 71.54, GDW 76.30",
        "cifar10-mix-unif60-imb10": "MW-Net 61.62, GDW 70.24",
        "cifar10-mix-unif40-imb100": "MW-Net 48.04, GDW 48.53",
        "cifar10-mix-unif60-imb100": "MW-Net 39.51, GDW 40.07",
        "cifar100-mix-unif40-imb10": "MW-Net 36.10, GDW 38.20",
        "cifar100-mix-unif60-imb10": "MW-Net 24.80, GDW 25.40",
        "cifar100-mix-unif40-imb100": "MW-Net 21.26, GDW 22.07",
        "cifar100-mix-unif60-imb100": "MW-Net 12.75, GDW 14.15",
    }
    for name, figure in table8.items():
        assert f"Reference: {figure} (appendix Table 8)" in desc[name]
    assert "L2RW 15.08, INSW 17.80, MW-Net 18.08, GDW 19.17" in desc["places-lt"]


def test_quick_and_real_world_presets():
    d60 = load_preset("digits-unif60")
    assert (d60["data"]["dataset"], d60["data"]["noise"], d60["data"]["noise_rate"]) == ("digits", "unif", 0.6)
    assert (d60["data"]["meta_per_class"], d60["model"]["arch"]) == (10, "digits_mlp")
    assert (d60["train"]["batch_size"], d60["train"]["lr"], d60["train"]["outer_lr"]) == (100, 0.1, 100.0)
    assert 20 <= d60["train"]["epochs"] <= 60
    assert load_preset("digits-clean")["data"]["noise"] == "none"
    assert load_preset("digits-imb")["data"]["imbalance"] == 10.0
    smoke = load_preset("synthetic-smoke")
    assert (smoke["data"]["dataset"], smoke["model"]["arch"], smoke["train"]["epochs"]) == ("synthetic", "resnet32", 2)
    assert smoke["data"]["synthetic_train"] <= 1000
    places = load_preset("places-lt")
    assert (places["data"]["dataset"], places["model"]["arch"], places["model"]["pretrained"]) == ("imagefolder", "resnet18", True)
    t = places["train"]
    assert (t["batch_size"], t["lr"], t["weight_decay"], t["epochs"]) == (64, 0.01, 1e-3, 10)
    cloth = load_preset("clothing1m")
    assert (cloth["data"]["dataset"], cloth["model"]["arch"], cloth["model"]["pretrained"]) == ("imagefolder", "resnet50", True)
    assert (cloth["train"]["epochs"], cloth["train"]["batch_size"], cloth["train"]["lr"]) == (5, 32, 0.01)


# --- overrides -----------------------------------------------------------------------------------


def test_overrides_coerce_strings_from_the_command_line():
    items = ["train.epochs=3", "train.lr=0.05", "data.augment=off", "train.device= CUDA:1 ", "title=My run",
             "data.imbalance=50", "train.seed=1_000"]
    overrides = dict(parse_set(i) for i in items)
    cfg = load_preset("digits-unif60", overrides)
    assert cfg["train"]["epochs"] == 3 and isinstance(cfg["train"]["epochs"], int)
    assert cfg["train"]["lr"] == 0.05
    assert cfg["data"]["augment"] is False
    assert cfg["train"]["device"] == "cuda:1"  # normalised: what was checked is what torch gets
    assert cfg["title"] == "My run"
    assert cfg["data"]["imbalance"] == 50.0 and isinstance(cfg["data"]["imbalance"], float)
    assert cfg["train"]["seed"] == 1000
    # the preset's other values are untouched, and the input dict is not modified
    base = load_preset("digits-unif60")
    assert cfg["data"]["noise_rate"] == base["data"]["noise_rate"] == 0.6
    again = apply_overrides(base, {"train.epochs": 7})
    assert again["train"]["epochs"] == 7 and base["train"]["epochs"] != 7


def test_overrides_change_noise_and_rate_together():
    cfg = load_preset("digits-clean", {"data.noise": "flip2", "data.noise_rate": "0.3"})
    assert (cfg["data"]["noise"], cfg["data"]["noise_rate"]) == ("flip2", 0.3)
    cfg = load_preset("digits-unif60", {"data.noise": "none", "data.noise_rate": 0})
    assert (cfg["data"]["noise"], cfg["data"]["noise_rate"]) == ("none", 0.0)


@pytest.mark.parametrize(
    "value,expected",
    [(True, True), ("true", True), ("Yes", True), ("1", True), ("on", True),
     (False, False), ("false", False), ("no", False), ("0", False), (" OFF ", False)],
)
def test_bool_spellings(value, expected):
    assert coerce("data.download", value) is expected


def test_parse_set_accepts_spaces_and_top_level_fields():
    assert parse_set(" train.epochs = 12 ") == ("train.epochs", "12")
    assert parse_set("description=a=b") == ("description", "a=b")


# --- error messages: each one line, naming the field and what is valid --------------------------


def test_unknown_preset_lists_the_valid_ones_and_suggests_the_nearest():
    msg = error(load_preset, "digits-unif6")
    assert msg.startswith("unknown preset 'digits-unif6' (did you mean 'digits-unif60'?); valid presets: cifar10-flip20, ")
    assert msg.endswith("places-lt, synthetic-smoke (or a path to a .toml file)")
    for name in EXPECTED_PRESETS:
        assert name in msg
    msg = error(load_preset, "zzzzzz")
    assert msg.startswith("unknown preset 'zzzzzz'; valid presets: cifar10-flip20, ")


@pytest.mark.parametrize(
    "dotted,value,message",
    [
        ("train.epoch", 3, "unknown field 'train.epoch'; did you mean 'train.epochs'?"),
        ("data.noise_rat", 0.1, "unknown field 'data.noise_rat'; did you mean 'data.noise_rate'?"),
        ("model.arc", "resnet32", "unknown field 'model.arc'; did you mean 'model.arch'?"),
        ("qqq.zzz", 1, "unknown field 'qqq.zzz'"),
        ("train.epochs", "ten", "train.epochs must be an integer (got 'ten')"),
        ("train.epochs", 2.5, "train.epochs must be an integer (got 2.5)"),
        ("train.batch_size", True, "train.batch_size must be an integer (got True)"),
        ("train.lr", "fast", "train.lr must be a number (got 'fast')"),
        ("data.augment", "maybe", "data.augment must be true or false (got 'maybe')"),
        ("data.data_dir", 5, "data.data_dir must be a string (got 5)"),
        ("train.epochs", -1, "train.epochs must be in [1, 100000] (got -1)"),
        ("train.epochs", "-5", "train.epochs must be in [1, 100000] (got '-5')"),
        ("train.epochs", 0, "train.epochs must be in [1, 100000] (got 0)"),
        ("data.noise_rate", 1.5, "data.noise_rate must be in [0, 1] (got 1.5)"),
        ("data.noise_rate", -0.1, "data.noise_rate must be in [0, 1] (got -0.1)"),
        ("data.imbalance", 0, "data.imbalance must be in [1, 100000] (got 0)"),
        ("data.imbalance", "0.5", "data.imbalance must be in [1, 100000] (got '0.5')"),
        ("train.momentum", 1.0, "train.momentum must be in [0, 1) (got 1.0)"),
        ("train.lr", 0, "train.lr must be in (0, 100] (got 0)"),
        ("train.lr", "nan", "train.lr must be in (0, 100] (got 'nan')"),
        ("train.lr", float("inf"), "train.lr must be in (0, 100] (got inf)"),
        ("train.meta_batch_size", -1, "train.meta_batch_size must be in [0, 1048576] (got -1)"),
        ("train.seed", 2**31, "train.seed must be in [0, 2147483647] (got 2147483648)"),
        ("data.noise", "uniform", "data.noise must be one of none, unif, flip, flip2 (got 'uniform'); did you mean 'unif'?"),
        ("train.method", "mw-net", "train.method must be one of erm, l2rw, mwnet, glc, coteach, insw, gdw, gdw-nozm (got 'mw-net'); did you mean 'mwnet'?"),
        ("data.dataset", "cifar", "data.dataset must be one of digits, cifar10, cifar100, synthetic, imagefolder (got 'cifar'); did you mean 'cifar10'?"),
        ("model.arch", "vgg", "model.arch must be one of auto, digits_mlp, resnet32, resnet18, resnet50 (got 'vgg')"),
        ("train.device", "gpu", "train.device must be auto, cpu, cuda or cuda:N (got 'gpu')"),
        ("train.device", "cuda:x", "train.device must be auto, cpu, cuda or cuda:N (got 'cuda:x')"),
        ("train.device", "cuda:", "train.device must be auto, cpu, cuda or cuda:N (got 'cuda:')"),
        ("train.device", "cuda:-1", "train.device must be auto, cpu, cuda or cuda:N (got 'cuda:-1')"),
    ],
)
def test_bad_values_give_one_exact_line(dotted, value, message):
    assert error(coerce, dotted, value) == message
    if not dotted.startswith("qqq"):
        # the same message through the override path
        assert error(load_preset, "digits-unif60", {dotted: value}) == message


def test_repr_of_a_value_keeps_the_message_on_one_line():
    assert error(coerce, "train.epochs", "1\n2") == "train.epochs must be an integer (got '1\\n2')"


@pytest.mark.parametrize(
    "item,message",
    [
        ("train.epochs", "--set expects section.key=value, e.g. train.epochs=10 (got 'train.epochs')"),
        ("epochs=10", "--set expects section.key=value, e.g. train.epochs=10 (got 'epochs=10'); did you mean 'train.epochs=10'?"),
        ("noise_rate=0.2", "--set expects section.key=value, e.g. train.epochs=10 (got 'noise_rate=0.2'); did you mean 'data.noise_rate=0.2'?"),
        ("=10", "--set expects section.key=value, e.g. train.epochs=10 (got '=10')"),
        ("", "--set expects section.key=value, e.g. train.epochs=10 (got '')"),
        ("banana=1", "--set expects section.key=value, e.g. train.epochs=10 (got 'banana=1')"),
        ("train.epoch=10", "unknown field 'train.epoch'; did you mean 'train.epochs'?"),
        ("train.=10", "unknown field 'train.'; did you mean 'train.lr'?"),
    ],
)
def test_malformed_set(item, message):
    assert error(parse_set, item) == message


def test_noise_and_rate_must_agree():
    assert error(load_preset, "digits-unif60", {"data.noise": "none"}) == (
        "data.noise_rate=0.6 needs data.noise to be unif, flip or flip2 (it is 'none')"
    )
    assert error(load_preset, "digits-clean", {"data.noise": "unif"}) == (
        "data.noise='unif' needs data.noise_rate > 0 (or set data.noise='none')"
    )
    assert error(load_preset, "digits-clean", {"data.noise_rate": 0.2}) == (
        "data.noise_rate=0.2 needs data.noise to be unif, flip or flip2 (it is 'none')"
    )


# --- preset files and directories ---------------------------------------------------------------


@pytest.mark.parametrize(
    "text,message",
    [
        ("this is = = not toml [", "bad.toml is not valid TOML: Expected '=' after a key in a key/value pair (at line 1, column 6)"),
        ("[train]\nepochs = 3\n[train]\n", "bad.toml is not valid TOML: Cannot declare ('train',) twice (at line 3, column 7)"),
        ("[train]\nepoch = 3\n", "bad.toml: unknown field 'train.epoch'; did you mean 'train.epochs'?"),
        ("[trian]\nepochs = 3\n", "bad.toml: unknown section or field 'trian'; did you mean 'train'?"),
        ("titel = 'x'\n", "bad.toml: unknown section or field 'titel'; did you mean 'title'?"),
        ("train = 3\n", "bad.toml: [train] must be a table of fields"),
        ("title = 3\n", "bad.toml: title must be a string (got 3)"),
        ("[train]\nepochs = -2\n", "bad.toml: train.epochs must be in [1, 100000] (got -2)"),
        ("[train]\nepochs = '80'\n", None),  # a quoted number is accepted and typed
        ("[data]\nnoise_rate = 0.3\n", "bad.toml: data.noise_rate=0.3 needs data.noise to be unif, flip or flip2 (it is 'none')"),
        ("[data]\nimbalance = 0\n", "bad.toml: data.imbalance must be in [1, 100000] (got 0)"),
    ],
)
def test_preset_file_errors(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    if message is None:
        assert load_preset(str(path))["train"]["epochs"] == 80
        return
    msg = error(load_preset, str(path))
    if "not valid TOML" in message:
        # the decoder's wording is Python's; the position and the frame are ours to check
        head, _, detail = message.partition(": ")
        assert msg.startswith(f"{tmp_path}/{head}: ") and msg.endswith(detail[detail.index("(at line"):])
    else:
        assert msg == message


def test_binary_garbage_file(tmp_path):
    path = tmp_path / "garbage.toml"
    path.write_bytes(b"\xff\xfe\x00\x81garbage")
    assert error(load_preset, str(path)) == (
        f"{path} is not valid TOML: line 1 is not UTF-8 text (byte 0xff at position 0)"
    )


def test_missing_and_directory_paths(tmp_path):
    missing = tmp_path / "nope.toml"
    assert error(load_preset, str(missing)) == f"preset file not found: {missing}"
    assert error(load_preset, str(tmp_path)) == f"preset path is a directory, not a .toml file: {tmp_path}"
    folder = tmp_path / "folder.toml"
    folder.mkdir()
    assert error(load_preset, str(folder)) == f"preset path is a directory, not a .toml file: {folder}"
    assert error(load_preset, "digits-clean", presets_dir=tmp_path / "absent") == (
        f"presets directory not found: {tmp_path / 'absent'}"
    )


def test_a_preset_by_path_is_named_after_its_file(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('title = "Mine"\n[train]\nepochs = 2\nmethod = "erm"\n')
    cfg = load_preset(str(path))
    assert (cfg["preset"], cfg["title"], cfg["train"]["epochs"], cfg["train"]["method"]) == ("mine", "Mine", 2, "erm")
    assert cfg["data"] == defaults()["data"]


def test_user_presets_dir_overrides_a_builtin(tmp_path, monkeypatch):
    user = tmp_path / "user"
    user.mkdir()
    (user / "digits-unif60.toml").write_text('title = "mine"\n[train]\nepochs = 2\n')
    (user / "extra.toml").write_text('title = "extra"\n')
    (user / "notes.txt").write_text("not a preset")
    cfg = load_preset("digits-unif60", presets_dir=user)
    assert (cfg["title"], cfg["train"]["epochs"], cfg["data"]["noise"]) == ("mine", 2, "none")
    presets = available_presets(user)
    assert presets["digits-unif60"] == user / "digits-unif60.toml"
    assert presets["extra"] == user / "extra.toml"
    assert presets["cifar10-unif40"] == PRESETS_DIR / "cifar10-unif40.toml"
    assert "notes" not in presets
    # the built-in is back without the option
    assert load_preset("digits-unif60")["train"]["method"] == "gdw"
    assert load_preset("digits-unif60")["title"] != "mine"

    # GDW_PRESETS (os.pathsep-separated) works the same; --presets-dir wins over it
    env = tmp_path / "env"
    env.mkdir()
    (env / "digits-unif60.toml").write_text('title = "from env"\n')
    (env / "envonly.toml").write_text('title = "env only"\n')
    monkeypatch.setenv("GDW_PRESETS", f"{tmp_path / 'missing'}:{env}")
    assert load_preset("digits-unif60")["title"] == "from env"
    assert load_preset("envonly")["title"] == "env only"
    assert load_preset("digits-unif60", presets_dir=user)["title"] == "mine"
    assert "envonly" in error(load_preset, "envonl")


def test_run_config_toml_loads_back(tmp_path):
    cfg = load_preset("cifar100-mix-unif60-imb10", {"train.seed": 10})
    raw = tomllib.loads(to_toml(cfg))
    assert raw == cfg
    assert from_toml_dict(raw, "config.toml") == cfg  # the `preset` key of a run's config is accepted


# --- property: any in-range value survives coerce and TOML ---------------------------------------


def _values(dotted: str):
    f = config.lookup_field(dotted)
    if f.choices:
        return st.sampled_from(f.choices)
    if dotted == "train.device":
        return st.one_of(st.sampled_from(["auto", "cpu", "cuda"]), st.integers(0, 64).map(lambda n: f"cuda:{n}"))
    if f.kind is bool:
        return st.booleans()
    if f.kind is int:
        return st.integers(int(math.ceil(f.lo)) + int(f.lo_open), int(f.hi) - int(f.hi_open))
    if f.kind is float:
        return st.floats(f.lo, f.hi, exclude_min=f.lo_open, exclude_max=f.hi_open, allow_nan=False)
    return st.text(max_size=40)


FIELDS = [f"{s}.{k}" for s, fields in SCHEMA.items() for k in fields] + ["title", "description"]


@st.composite
def field_and_value(draw):
    dotted = draw(st.sampled_from(FIELDS))
    return dotted, draw(_values(dotted))


@settings(max_examples=300, deadline=None)
@given(field_and_value())
def test_in_range_values_round_trip(item):
    dotted, value = item
    typed = coerce(dotted, value)
    assert typed == value and type(typed) is type(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        assert coerce(dotted, repr(value)) == value  # the command-line spelling gives the same value
    if isinstance(value, bool):
        assert coerce(dotted, str(value).lower()) is value

    cfg = defaults()
    section, _, key = dotted.partition(".")
    overrides = {dotted: value}
    if dotted == "data.noise" and value != "none":
        overrides["data.noise_rate"] = 0.5
    if dotted == "data.noise_rate" and value > 0:
        overrides["data.noise"] = "unif"
    cfg = apply_overrides(cfg, overrides)
    text = to_toml(cfg)
    raw = tomllib.loads(text)
    assert raw == cfg
    assert from_toml_dict(raw, "x.toml") == cfg
