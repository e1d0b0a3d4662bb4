"""The dashboard shows what GLC, Co-teaching and INSW do, on runs the real engine made.

GLC: its phase in the header, Ĉ as a heatmap with its error against the true matrix beside it.
Co-teaching: both networks' test accuracy, each network's label precision and the forget rate.
INSW: instance weights like MW-Net's (clean vs corrupted, V). At 80×24 and 160×50.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from engine.events import read_events
from engine.runs import read_summary
from fixtures.tui_support import screen_text, wait_caught_up, wait_until
from gdw_tui.app import GdwApp
from gdw_tui.widgets.heatmap import Heatmap


@pytest.fixture(scope="module")
def method_runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    procs = {m: subprocess.Popen([sys.executable, "-m", "gdw_cli", "run", "--headless", "digits-unif60", "--epochs", "4",
                                  "--method", m, "--device", "cpu", "--runs-dir", str(root / m)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for m in ("glc", "coteach", "insw")}
    out = {}
    for m, proc in procs.items():
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        (out[m],) = list((root / m).iterdir())
    return out


def epochs(run_dir: Path) -> list[dict]:
    return [e for e in read_events(run_dir / "events.jsonl") if e["type"] == "epoch"]


@pytest.mark.parametrize("size", [(80, 24), (160, 50)], ids=["80x24", "160x50"])
async def test_glc_shows_its_phase_and_c_hat_beside_the_true_matrix(method_runs, size) -> None:
    run_dir = method_runs["glc"]
    error = read_summary(run_dir)["glc"]["mean_abs_error"]
    app = GdwApp(run_dir.parent, open_run=run_dir)
    async with app.run_test(size=size) as pilot:
        await wait_caught_up(pilot)
        text = screen_text(app)
        assert "phase 2/2 (corrected loss)" in text
        omega = app.screen.query_one("#pane-omega")
        assert omega.border_title == f"Ĉ, GLC's estimate · mean |Ĉ−T| {error:.4f}"
        c_hat = app.screen.query_one("#heatmap", Heatmap)
        expected = [v for row in read_summary(run_dir)["glc"]["c_hat"] for v in row]
        assert list(c_hat.values) == pytest.approx(expected, abs=1e-6)
        truth = app.screen.query_one("#true-matrix", Heatmap)
        assert truth.display and app.screen.query_one("#pane-target").border_title.startswith("True corruption matrix")
        assert list(truth.values) == pytest.approx([v for row in read_summary(run_dir)["glc"]["true_matrix"] for v in row])


@pytest.mark.parametrize("size", [(80, 24), (160, 50)], ids=["80x24", "160x50"])
async def test_coteach_shows_both_networks_precision_and_forget_rate(method_runs, size) -> None:
    run_dir = method_runs["coteach"]
    ev = epochs(run_dir)
    app = GdwApp(run_dir.parent, open_run=run_dir)
    async with app.run_test(size=size) as pilot:
        await wait_caught_up(pilot)
        acc = app.screen.query_one("#acc-chart")
        await wait_until(pilot, lambda: [c.label for c in acc.curves][:2] == ["test net 1", "test net 2"], what="both nets")
        assert [y for _, y in acc.curves[1].points] == [e["net_accs"][1] for e in ev]
        chart = app.screen.query_one("#vnet-chart")
        assert [c.label for c in chart.curves] == ["precision net 1", "precision net 2", "forget rate"]
        assert [y for _, y in chart.curves[0].points] == pytest.approx([100 * e["label_precision"][0] for e in ev])
        assert [y for _, y in chart.curves[2].points] == pytest.approx([100 * e["forget_rate"] for e in ev])
        assert app.screen.query_one("#pane-vnet").border_title.startswith("Label precision % · forget rate %")


async def test_insw_shows_instance_weights_like_mwnet(method_runs) -> None:
    run_dir = method_runs["insw"]
    app = GdwApp(run_dir.parent, open_run=run_dir)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_caught_up(pilot)
        target = app.screen.query_one("#target-chart")
        await wait_until(pilot, lambda: [c.label for c in target.curves] == ["clean", "corrupted"], what="target curves")
        assert all(len(c.points) > 0 for c in target.curves)
        vnet = app.screen.query_one("#vnet-chart")
        assert vnet.curves and vnet.curves[-1].label.startswith("epoch")
        assert "has no weighting network" not in screen_text(app)
