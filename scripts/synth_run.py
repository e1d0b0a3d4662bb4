"""Invented but schema-valid events of a GDW run, for the UI's test fixtures and scripts/replay_run.py.

The curves are invented but shaped like real GDW runs (falling loss, rising accuracy, the target
weight of corrupted samples sinking below that of clean ones); the log lines are the ones the real
engine writes. Every event is built with engine.events.make_event, and tests/test_fixture_schema.py
checks each one with engine.events.validate_event, so a schema change breaks the synthesiser instead
of letting it drift. Deterministic: the numbers depend only on the arguments.
"""

from __future__ import annotations

import math
import random
from typing import Any, Iterator

from engine.config import defaults
from engine.events import make_event

T0 = 1763979300.0  # 2025-11-24 10:15:00 UTC: fixtures never depend on the clock

DIGITS = [str(i) for i in range(10)]
CIFAR100 = (
    "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly camel can "
    "castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup dinosaur dolphin "
    "elephant flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower leopard lion lizard lobster "
    "man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree pear pickup_truck "
    "pine_tree plain plate poppy porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk "
    "skyscraper snail snake spider squirrel streetcar sunflower sweet_pepper table tank telephone television "
    "tiger tractor train trout tulip turtle wardrobe whale willow_tree wolf woman worm"
).split()

# How much better each method ends up than MW-Net, in accuracy points (invented, in the paper's order).
METHOD_BONUS = {"gdw": 1.5, "mwnet": 0.0, "l2rw": -1.5, "gdw-nozm": -4.0, "erm": -8.0}

TRACEBACK = """Traceback (most recent call last):
  File "/srv/gdw/engine/__main__.py", line 41, in main
    trainer.run()
  File "/srv/gdw/engine/trainer.py", line 188, in run
    stats = self.method.step(batch, meta_batch, lr)
  File "/srv/gdw/engine/methods/gdw.py", line 97, in step
    logits = functional_call(self.model, params, (x,))
RuntimeError: mat1 and mat2 shapes cannot be multiplied (100x64 and 32x10)
"""


def _r(x: float, nd: int = 4) -> float:
    return round(float(x), nd)


def run_config(preset: str, dataset: str, method: str, epochs: int, noise_rate: float, seed: int) -> dict[str, Any]:
    cfg = defaults()
    cfg["title"] = f"{dataset}, {int(noise_rate * 100)}% uniform noise"
    cfg["data"].update(dataset=dataset, noise="unif" if noise_rate else "none", noise_rate=noise_rate)
    cfg["train"].update(method=method, epochs=epochs, seed=seed, device="cpu")
    cfg["preset"] = preset
    return cfg


def synth_events(
    *,
    run_id: str,
    preset: str,
    method: str = "gdw",
    classes: list[str] = DIGITS,
    dataset: str = "digits",
    epochs: int = 6,
    iters_per_epoch: int = 50,
    noise_rate: float = 0.6,
    seed: int = 1,
    t0: float = T0,
    it_s: float = 25.0,
    step_every: int = 5,
    weights_per_epoch: int = 4,
    weights_every_iters: int | None = None,  # instead of per epoch: one snapshot every this many iterations
    stop_after_epochs: int | None = None,  # epochs to complete before the run ends early
    end: str = "run_end",  # run_end | failure | stopped | none (killed: no terminal event)
) -> Iterator[dict[str, Any]]:
    """The events of one run, in order, with invented but plausible numbers."""
    rng = random.Random(f"{run_id}")
    c = len(classes)
    meta = method != "erm"
    total = epochs * iters_per_epoch
    test_s = 2.0
    t = t0

    def ev(type_: str, **fields: Any) -> dict[str, Any]:
        e = make_event(type_, **fields)
        e["t"] = _r(t, 3)
        return e

    cfg = run_config(preset, dataset, method, epochs, noise_rate, seed)
    per_class = 1700 // c if c <= 10 else 490
    start = ev(
        "run_start", run_id=run_id, preset=preset, title=cfg["title"], config={k: cfg[k] for k in ("data", "model", "train")},
        method=method, seed=seed, device="cpu", device_name="2-core CPU", classes=classes, num_classes=c,
        epochs=epochs, iters_per_epoch=iters_per_epoch,
        counts={"train": per_class * c, "meta": 10 * c, "test": 100 * c, "train_per_class": [per_class] * c, "meta_per_class": [10] * c},
        noise={"kind": "unif", "rate": noise_rate, "imbalance": 1.0, "measured_rate": _r(noise_rate * (c - 1) / c + 0.003), "matrix": None},
        versions={"engine": "0.1.0", "python": "3.11.7", "torch": "2.5.1", "torchvision": "0.20.1", "schema": 1},
        pid=4242, resumed=False, start_epoch=0,
    )
    yield start
    measured = start["noise"]["measured_rate"]
    yield ev("log", level="info", message=f"measured label corruption: {100 * measured:.2f}% of {per_class * c} training labels")

    snapshot_iters = {round((k + 1) * iters_per_epoch / weights_per_epoch) - 1 for k in range(weights_per_epoch)}
    best, accs = 0.0, []
    last_epoch = epochs if stop_after_epochs is None else stop_after_epochs
    for epoch in range(last_epoch + (0 if end == "run_end" else 1)):
        lr = 0.1 * (1 + math.cos(math.pi * epoch / epochs)) / 2
        in_final_epoch = epoch == last_epoch
        iters = iters_per_epoch if not in_final_epoch else iters_per_epoch // 2
        for it in range(iters):
            gi = epoch * iters_per_epoch + it
            p = gi / total
            t += 1.0 / it_s
            if it % step_every == step_every - 1 or it == iters_per_epoch - 1:
                loss = 2.3 * math.exp(-2.5 * p) + 0.35 + rng.gauss(0, 0.04)
                yield ev(
                    "step", epoch=epoch, iter=it, global_iter=gi, loss=_r(loss),
                    meta_loss=_r(loss * 0.6 + rng.gauss(0, 0.03)) if meta else None,
                    train_acc=_r(min(99, 85 * (1 - math.exp(-4 * p)) + rng.gauss(0, 1))),
                    meta_acc=_r(min(100, 90 * (1 - math.exp(-4 * p)) + rng.gauss(0, 2))) if meta else None,
                    lr=_r(lr, 6), it_s=_r(it_s + rng.gauss(0, 0.5), 2), samples_s=_r(100 * it_s, 1),
                )
            due = (gi + 1) % weights_every_iters == 0 if weights_every_iters else it in snapshot_iters
            if due and not in_final_epoch:
                epoch_end = it == iters_per_epoch - 1
                yield ev("weights", **_weights(rng, c, epoch, it, gi, p, method, noise_rate, epoch_end))
        if in_final_epoch:
            break
        t += test_s
        acc = 92 * (1 - math.exp(-3.5 * (epoch + 1) / epochs)) * (1 - 0.3 * noise_rate) + METHOD_BONUS.get(method, 0.0) * (epoch + 1) / epochs + rng.gauss(0, 0.4)
        accs.append(acc)
        best = max(best, acc)
        yield ev(
            "epoch", epoch=epoch, test_loss=_r(2.3 * math.exp(-2 * (epoch + 1) / epochs) + 0.3), test_acc=_r(acc, 2),
            per_class_acc=[_r(min(100, max(0, acc + 12 * math.sin(j * 1.7) + rng.gauss(0, 1.5))), 2) for j in range(c)],
            train_loss=_r(2.3 * math.exp(-2.5 * (epoch + 1) / epochs) + 0.4), train_acc=_r(acc * 0.9, 2),
            meta_loss=_r(1.2 * math.exp(-2 * (epoch + 1) / epochs) + 0.2) if meta else None,
            meta_acc=_r(min(100, acc * 1.05), 2) if meta else None,
            lr=_r(lr, 6), best_acc=_r(best, 2), epoch_s=_r(iters_per_epoch / it_s + test_s, 2), train_s=_r(iters_per_epoch / it_s, 2),
            net_accs=None, phase=None, c_hat=None, label_precision=None, forget_rate=None,
        )
        yield ev("checkpoint", epoch=epoch + 1, path="checkpoints/last.pt")

    if end == "run_end":
        final = sum(accs[-5:]) / len(accs[-5:])
        yield ev("run_end", final_acc=_r(final, 2), best_acc=_r(best, 2), best_epoch=accs.index(max(accs)), wall_s=_r(t - t0, 1))
    elif end == "failure":
        yield ev("failure", kind="error", message="RuntimeError: mat1 and mat2 shapes cannot be multiplied (100x64 and 32x10)",
                 traceback=TRACEBACK, epoch=last_epoch, iter=iters_per_epoch // 2 - 1)
    elif end == "stopped":
        yield ev("checkpoint", epoch=last_epoch, path="checkpoints/last.pt")
        yield ev("stopped", epoch=last_epoch, iter=iters_per_epoch // 2 - 1, reason="SIGTERM")


def _weights(rng: random.Random, c: int, epoch: int, it: int, gi: int, p: float, method: str, noise: float, epoch_end: bool) -> dict[str, Any]:
    class_level = method in ("gdw", "gdw-nozm")
    omega = []
    for a in range(c):
        if c > 10 and epoch == 0 and it < 30 and a % 37 == 5:
            omega.append([None] * c)  # a label no sample of the window carried
            continue
        if class_level:
            row = [_r(1.0 + 0.25 * math.sin(0.7 * a + 1.3 * j) * p + rng.gauss(0, 0.03)) for j in range(c)]
            row[a] = _r(max(0.02, 1.0 - noise * 1.2 * p + 0.15 * math.cos(a) + rng.gauss(0, 0.02)))
        elif method == "erm":
            row = [1.0] * c  # no reweighting: every weight is 1
        else:
            w = _r(max(0.01, 0.9 - noise * 0.6 * p + 0.1 * math.sin(a) + rng.gauss(0, 0.02)))
            row = [w] * c
        omega.append(row)
    ratio = None
    if class_level and epoch_end:
        ratio = [[_r(0.036 + 0.9 * (i / max(1, c - 1)) if i == j else 0.35 + 0.3 * rng.random(), 3) for j in range(c)] for i in range(c)]
    clean_mean = 0.85 + 0.1 * p if method != "erm" else 1.0
    corr_mean = 0.8 - 0.55 * p * noise / 0.6 if method != "erm" else 1.0
    edges = [_r(k / 10 * 1.5, 2) for k in range(11)]
    clean_hist = [int(400 * math.exp(-((k / 10 * 1.5 - clean_mean) ** 2) / 0.05)) for k in range(10)]
    corr_hist = [int(300 * math.exp(-((k / 10 * 1.5 - corr_mean) ** 2) / 0.05)) for k in range(10)]
    vnet = None
    if method in ("mwnet", "gdw", "gdw-nozm"):
        grid = [_r(k * 0.25, 2) for k in range(41)]
        vnet = {"loss": grid, "weight": [_r(1 / (1 + math.exp(-(1.5 - p * 2.0 * (g - 1.0))))) for g in grid]}
    return {
        "epoch": epoch, "iter": it, "global_iter": gi, "omega": omega, "increase_ratio": ratio, "epoch_end": epoch_end,
        "target_weight": {
            "clean_mean": _r(clean_mean + rng.gauss(0, 0.01)), "corrupted_mean": _r(corr_mean + rng.gauss(0, 0.01)),
            "clean_count": sum(clean_hist), "corrupted_count": sum(corr_hist),
            "bins": edges, "clean_hist": clean_hist, "corrupted_hist": corr_hist,
        },
        "vnet": vnet,
    }
