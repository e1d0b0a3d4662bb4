"""`gdw bench` and the naive GDW it compares against (no timing assertions: benchmarks are not tests)."""

from __future__ import annotations

import copy
import json

import torch
from typer.testing import CliRunner

from engine.bench_naive import NaiveGDW
from engine.methods import make_method
from engine.models import build_model
from gdw_cli.main import app

runner = CliRunner()


def test_naive_gdw_computes_the_same_numbers_as_the_engine():
    torch.manual_seed(0)

    def build():
        return build_model("digits_mlp", 10, (64,)).double()

    model = build()
    naive_model = copy.deepcopy(model)
    sgd = lambda m: torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)  # noqa: E731
    lean = make_method("gdw", model, 10, sgd(model))
    naive = NaiveGDW(naive_model, build, 10, sgd(naive_model))
    naive.vnet.load_state_dict(lean.vnet.state_dict())
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        x, xm = torch.randn(32, 64, generator=g, dtype=torch.float64), torch.randn(16, 64, generator=g, dtype=torch.float64)
        y, ym = torch.randint(0, 10, (32,), generator=g), torch.randint(0, 10, (16,), generator=g)
        a = lean.step(x, y, xm, ym, lr=0.1)
        b = naive.step(x, y, xm, ym, lr=0.1)
        torch.testing.assert_close(a.class_weights, b.class_weights, rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(a.meta_loss, b.meta_loss, rtol=1e-10, atol=1e-12)
    for p, q in zip(model.state_dict().values(), naive_model.state_dict().values()):
        torch.testing.assert_close(p, q, rtol=1e-9, atol=1e-12)


def test_bench_json_reports_every_method_with_ratios():
    result = runner.invoke(app, ["bench", "--json", "--arch", "digits_mlp", "--methods", "erm,mwnet,glc,coteach,insw,gdw,gdw-naive",
                                 "--iters", "2", "--warmup", "0", "--no-augmentation"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    names = [m["method"] for m in data["methods"]]
    assert names == ["erm", "mwnet", "glc", "coteach", "insw", "gdw", "gdw-naive"]
    erm = data["methods"][0]
    assert erm["x_erm"] == 1.0
    for m in data["methods"]:
        assert m["iters"] == 2 and 0 < m["min_s"] <= m["median_s"] <= m["max_s"]
        assert m["x_erm"] == m["median_s"] / erm["median_s"]
    assert data["gdw_over_mwnet"] > 0 and data["naive_over_gdw"] > 0 and data["insw_over_mwnet"] > 0
    assert data["device"] == "cpu" and data["arch"] == "digits_mlp"
    # Progress while it measures goes to stderr, step by step, and stays out of the JSON on stdout.
    lines = result.stderr.splitlines()
    assert lines[:7] == [f"bench: setting up {m} ({n}/7)" for n, m in enumerate(names, 1)]
    assert lines[7:] == ["bench: round 1/2: one iteration of each method", "bench: round 2/2: one iteration of each method"]


def test_bench_measures_both_augmentation_pipelines():
    from engine.bench import time_augmentation

    a = time_augmentation("cpu", batch_size=50, n_images=200)
    assert a["tensor_images_s"] > 0 and a["pil_images_s"] > 0


def test_bench_bad_input_is_one_line_exit_2():
    for args, needle in [
        (["--methods", "erm,foo"], "unknown method 'foo'"),
        (["--device", "cuda:9"], "not available"),
        (["--device", "gpu"], "train.device must be"),
        (["--arch", "vgg"], "--arch must be"),
    ]:
        result = runner.invoke(app, ["bench", "--iters", "1", *args])
        assert result.exit_code == 2, (args, result.output)
        assert needle in result.stderr and len(result.stderr.strip().splitlines()) == 1
        assert "Traceback" not in result.output
