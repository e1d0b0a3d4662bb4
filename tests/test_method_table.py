"""The method table (engine.method_table) and the implementations (engine/methods/) agree, and every
consumer reads the table: adding a method is one module plus one row."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest
import torch

from engine.config import SCHEMA
from engine.events import EVENT_TYPES
from engine.method_table import METHODS, methods_with_role
from engine.methods import ALL_HYPERPARAMETERS, REGISTRY, SUPPORT_MODULES, Method, make_method
from engine.stats import StepAccumulator, WeightAccumulator

ROOT = Path(__file__).resolve().parents[1]


def method_classes_on_disk() -> dict[str, list[str]]:
    """module name -> the `name`s of the Method subclasses it defines, read from the files themselves."""
    out: dict[str, list[str]] = {}
    for info in pkgutil.iter_modules([str(ROOT / "engine" / "methods")]):
        if info.name in SUPPORT_MODULES:
            continue
        module = importlib.import_module(f"engine.methods.{info.name}")
        out[info.name] = [cls.name for cls in vars(module).values()
                          if inspect.isclass(cls) and issubclass(cls, Method) and cls.__module__ == module.__name__]
    return out


def test_every_method_module_has_a_row_and_every_row_an_implementation():
    on_disk = method_classes_on_disk()
    assert set(on_disk) == {"erm", "l2rw", "mwnet", "gdw", "insw", "glc", "coteach"}
    assert all(on_disk.values()), {m: c for m, c in on_disk.items() if not c}  # a method module without a method
    names = [n for classes in on_disk.values() for n in classes]
    assert sorted(names) == sorted(METHODS), "a method module has no row in engine.method_table, or a row has no class"
    assert set(REGISTRY) == set(METHODS) and all(REGISTRY[n].name == n for n in METHODS)


def test_support_modules_exist():
    """The modules skipped as machinery are real files (a rename would silently skip a method module)."""
    for name in SUPPORT_MODULES:
        assert (ROOT / "engine" / "methods" / f"{name}.py").exists()


def test_the_rows_match_what_the_implementations_do():
    model = torch.nn.Linear(4, 3)
    for name, info in METHODS.items():
        extra = {}
        if name == "coteach":
            net2 = torch.nn.Linear(4, 3)
            extra = {"model2": net2, "optimizer2": torch.optim.SGD(net2.parameters(), lr=0.1), "forget_rate": 0.5}
        m = make_method(name, model, 3, torch.optim.SGD(model.parameters(), lr=0.1), **extra)
        assert m.uses_meta == info.has_meta_step, name
        assert (m.vnet is not None) == info.has_weighting_network, name
        assert len(m.eval_models()) == info.networks, name
        x, y = torch.randn(6, 4), torch.tensor([0, 1, 2, 0, 1, 2])
        stats = m.step(x, y, x, y, lr=0.1) if info.has_meta_step else m.step(x, y, lr=0.1)
        # Instance weights: one per sample (B, or B×1 as INSW's); class-level: B×C.
        shape = {"none": (6,), "instance": (6,), "class": (6, 3)}[info.weights]
        assert tuple(stats.class_weights.shape) in (shape, shape + (1,)) and stats.class_weights.numel() == 6 * (3 if info.weights == "class" else 1), name
        if info.weights == "none":
            assert torch.equal(stats.class_weights, torch.ones(6))
        assert (stats.kept is not None) == info.selects_samples, name


def test_roles_come_from_the_table():
    assert methods_with_role("proposed") == ("gdw",)
    assert methods_with_role("ablation") == ("gdw-nozm",)
    assert set(methods_with_role("baseline")) == {"erm", "l2rw", "mwnet", "glc", "coteach", "insw"}


def test_each_method_declares_only_its_own_hyperparameters():
    own = {name: cls.hyperparameters for name, cls in REGISTRY.items()}
    assert own["erm"] == own["l2rw"] == ()
    assert set(own["mwnet"]) == {"vnet_lr", "vnet_weight_decay", "vnet_hidden"}
    assert set(own["gdw"]) == set(own["insw"]) == {"outer_lr", "clip", "vnet_lr", "vnet_weight_decay", "vnet_hidden"}
    assert own["glc"] == ("glc_phase1_epochs",) and set(own["coteach"]) == {"forget_rate", "forget_epochs"}


def test_hyperparameter_defaults_come_from_the_preset_schema():
    model = torch.nn.Linear(4, 3)
    m = make_method("gdw", model, 3, torch.optim.SGD(model.parameters(), lr=0.1))
    train = SCHEMA["train"]
    assert (m.outer_lr, m.clip) == (train["outer_lr"].default, train["clip"].default)
    assert m.vnet.hidden.out_features == train["vnet_hidden"].default
    adam = m.vnet_optimizer.param_groups[0]
    assert (adam["lr"], adam["weight_decay"]) == (train["vnet_lr"].default, train["vnet_weight_decay"].default)
    assert all(k in train for k in ALL_HYPERPARAMETERS)
    assert "= 100.0" not in inspect.getsource(make_method)
    m = make_method("gdw", model, 3, torch.optim.SGD(model.parameters(), lr=0.1), outer_lr=7.0, vnet_hidden=5)
    assert m.outer_lr == 7.0 and m.vnet.hidden.out_features == 5
    with pytest.raises(TypeError, match="unknown hyperparameters"):
        make_method("gdw", model, 3, torch.optim.SGD(model.parameters(), lr=0.1), outer_lr_typo=1.0)


def test_statistics_read_the_table():
    dev = torch.device("cpu")
    for name, info in METHODS.items():
        assert StepAccumulator(dev, name).has_meta == info.has_meta_step
        weights = WeightAccumulator(3, dev, name, batch_size=50)
        assert weights.tracks_increase == info.has_increase_ratio
    assert WeightAccumulator(3, dev, "l2rw", batch_size=50).hist_max == pytest.approx(4.0 / 50)
    assert WeightAccumulator(3, dev, "mwnet", batch_size=50).hist_max == 1.0
    assert WeightAccumulator(3, dev, "gdw", batch_size=50).hist_max == 2.0


def test_the_event_schema_and_the_cli_list_the_table():
    from typer.testing import CliRunner

    from gdw_cli.main import app

    assert EVENT_TYPES["run_start"][1]["method"] == " | ".join(METHODS)
    help_text = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "300"}).stdout
    assert "method: " + ", ".join(METHODS) in help_text
