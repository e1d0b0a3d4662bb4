"""The training loop of one run: data, model, method, a cosine learning rate per epoch, test, events.

Read it top to bottom: `Run.__init__` builds everything a run holds, `Run.train` is the loop.
What happens around the loop (start, resume, stop, failures, the final summary) is
engine.lifecycle; the checkpoint is engine.checkpoint; the device is engine.device.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from . import checkpoint
from .config import resolved_arch
from .events import METHOD_EPOCH_FIELDS, EventWriter
from .rundir import CHECKPOINT, EVENTS
from .runs import read_summary, write_summary
from .signals import STOP
from .stats import StepAccumulator, WeightAccumulator


class Diverged(RuntimeError):
    def __init__(self, epoch: int, it: int):
        super().__init__(f"diverged at epoch {epoch + 1}, iteration {it + 1}: non-finite loss or weight")
        self.epoch, self.it = epoch, it


class StopRequested(Exception):
    """A signal asked for a clean stop; raised between iterations, so the checkpoint is consistent."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class Run:
    """Everything one run holds; `train()` is the loop.

    The run holds the data, its own place in it (epoch, iteration, index order, generators) and
    the statistics; the method (engine/methods) holds what it trains: its models, optimisers and
    schedule, built through the RunContext the run lends it.
    """

    def __init__(self, run_dir: Path, cfg: dict[str, Any], device: torch.device, on_event: Callable | None,
                 resume: bool = False):
        # Imported here: a failure while importing them is a failure of this run's setup, reported as such.
        from .data import load_data
        from .methods import method_class
        from .methods.context import RunContext

        self.run_dir, self.cfg, self.device = run_dir, cfg, device
        self.on_event = on_event
        train = cfg["train"]
        method_cls = method_class(train["method"])
        self.epochs = method_cls.loop_epochs(train["epochs"])
        seed_everything(train["seed"])
        if device.type == "cpu":
            threads = train["threads"] or (1 if resolved_arch(cfg) == "digits_mlp" else torch.get_num_threads())
            torch.set_num_threads(threads)
        self.data = load_data(cfg, device)
        self.C = self.data.num_classes
        # bf16 autocast is a GPU option; on a CPU it is reported and ignored.
        self.bf16 = train["bf16"] and device.type == "cuda"
        self.autocast = torch.autocast("cuda", dtype=torch.bfloat16) if self.bf16 else contextlib.nullcontext()

        # Labels live on the device; index order and augmentation come from generators whose
        # states are checkpointed, so a resumed run draws exactly what the uninterrupted one would.
        self.train_labels = self.data.train.labels.to(device)
        self.train_true = self.data.train.true_labels.to(device)
        self.test_labels = self.data.test.labels.to(device)
        self.order_gen = torch.Generator().manual_seed(train["seed"])
        self.aug_gen = torch.Generator(device=device).manual_seed(train["seed"] + 2)
        self.batch_size = train["batch_size"]
        n = self.data.train.size
        self.iters_per_epoch = max(1, math.ceil(n / self.batch_size) - (1 if n % self.batch_size == 1 else 0))
        self.augment = self.data.augment_default
        meta_batch_size = min(train["meta_batch_size"] or self.batch_size, self.data.meta.size)
        self.ctx = RunContext(cfg, self.data, device, self.epochs, self.iters_per_epoch, self.aug_gen, self.augment,
                              meta_batch_size)
        self.method = method_cls.for_run(self.ctx, **{k: train[k] for k in method_cls.hyperparameters})
        self.eval_models = self.method.eval_models()
        if train["compile"]:
            self.method.compile_training_forward()
            self.eval_models = [torch.compile(m) for m in self.eval_models]

        # Progress state (checkpointed).
        self.epoch = 0
        self.iter = 0  # next iteration within the epoch
        self.epoch_perm: torch.Tensor | None = None
        self.history: list[dict[str, Any]] = []
        self.best_acc, self.best_epoch = -1.0, -1
        self.wall_before = 0.0  # wall seconds of earlier segments
        self.steps = StepAccumulator(device, method=train["method"])
        self.weights = WeightAccumulator(self.C, device, method=train["method"], batch_size=self.batch_size)

        if resume:
            checkpoint.restore(self)
        # Last: a run refused above (a corrupt checkpoint) leaves its events file untouched.
        # `train.events = false` leaves out the step and weights events (the loop checks it), nothing else.
        self.writer = EventWriter(run_dir / EVENTS)

    # -- the run's own state (the checkpoint: engine.checkpoint) --------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly here: the method's state, the clean-set cursor, where
        the loop is, its statistics and every random number generator. Plain types and tensors only,
        so `torch.load(weights_only=True)` reads it."""
        return {
            "method": self.method.state_dict(),
            "clean_set": self.ctx.state_dict(),
            # Where the loop is.
            "epoch": self.epoch, "iter": self.iter, "epoch_perm": self.epoch_perm, "history": self.history,
            "best_acc": self.best_acc, "best_epoch": self.best_epoch, "wall_s": self.wall(),
            "rng": {"order_gen": self.order_gen.get_state(), "aug_gen": self.aug_gen.get_state(),
                    **checkpoint.rng_states()},
            "steps": self.steps.state_dict(),
            "weights": self.weights.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.method.load_state_dict(state["method"])
        self.ctx.load_state_dict(state["clean_set"])
        p = state
        self.epoch, self.iter = int(p["epoch"]), int(p["iter"])
        self.epoch_perm = None if p["epoch_perm"] is None else p["epoch_perm"].cpu()
        self.history = list(p["history"])
        self.best_acc, self.best_epoch = float(p["best_acc"]), int(p["best_epoch"])
        self.wall_before = float(p["wall_s"])
        rng = state["rng"]
        self.order_gen.set_state(rng["order_gen"].cpu())
        self.aug_gen.set_state(rng["aug_gen"].cpu())
        checkpoint.set_rng_states(rng)
        self.steps.load_state_dict(state["steps"])
        self.weights.load_state_dict(state["weights"])

    def emit(self, type_: str, **fields: Any) -> None:
        event = self.writer.emit(type_, **fields)
        if self.on_event is not None:
            self.on_event(event)

    def close(self) -> None:
        self.writer.close()

    # -- the loop --------------------------------------------------------------------------------

    def train(self) -> None:
        """Train from (epoch, iter) to the last epoch. Starts mid-epoch after a resume."""
        # Events are rate-limited so that a fast run does not spend its time writing JSON.
        events_on = self.cfg["train"]["events"]
        step_interval = 1.0 / self.cfg["train"]["step_events_per_s"]
        weights_every = max(1, math.ceil(self.iters_per_epoch / self.cfg["train"]["weights_events_per_epoch"]))
        while self.epoch < self.epochs:
            self.ctx.epoch, self.ctx.iter = self.epoch, self.iter
            self.method.start_epoch(self.ctx)
            lr = self.method.lr(self.ctx)
            epoch_start = time.time()
            # A fresh epoch draws its order; a resumed one keeps the order its checkpoint saved.
            if self.iter == 0 or self.epoch_perm is None:
                self.epoch_perm = torch.randperm(self.data.train.size, generator=self.order_gen)
                self.steps.reset_epoch()
                self.weights.reset_epoch()
            last_step_event = time.time()
            while self.iter < self.iters_per_epoch:
                # 1. The training batch (noisy labels y; the true ones only for statistics).
                it = self.ctx.iter = self.iter
                idx = self.epoch_perm[it * self.batch_size : (it + 1) * self.batch_size]
                idx_dev = idx.to(self.device, non_blocking=True)
                x = self.ctx.to_format(self.data.train.batch(idx, self.augment, self.aug_gen))
                y, y_true = self.train_labels[idx_dev], self.train_true[idx_dev]
                # 2. One iteration of the method: it draws what else it needs (a clean batch) from the context.
                with self.autocast:
                    stats = self.method.train_step(x, y, self.ctx)
                # 3. Statistics stay on the device; they are read only when an event is written.
                self.steps.add(stats, y, y_true, self.epoch * self.iters_per_epoch + it)
                if events_on:
                    self.weights.add(stats, y, y_true)
                self.iter += 1
                # 4. Events, now and then; a divergence is caught before its numbers are written.
                last = self.iter == self.iters_per_epoch
                now = time.time()
                if events_on and (last or now - last_step_event >= step_interval):
                    self._check_finite()
                    self.emit("step", epoch=self.epoch, iter=it, global_iter=self.epoch * self.iters_per_epoch + it,
                              lr=lr, **self.steps.window(self.batch_size))
                    last_step_event = now
                if events_on and not last and self.iter % weights_every == 0:
                    self._check_finite()  # a NaN weight must be reported as divergence, not fail the JSON encoder
                    self._emit_weights(it, epoch_end=False)
                # 5. A requested stop is taken between iterations, where the state is consistent.
                if STOP.reason is not None:
                    raise StopRequested
            # End of the epoch: the last snapshot (with Table 6's increase ratio), test, checkpoint.
            self._check_finite()
            if events_on:
                self._emit_weights(self.iter - 1, epoch_end=True)
            self._end_epoch(lr, time.time() - epoch_start)

    def _emit_weights(self, it: int, epoch_end: bool) -> None:
        """A weights snapshot since the last one; Table 6's increase ratio only at an epoch's end."""
        self.emit("weights", epoch=self.epoch, iter=it, global_iter=self.epoch * self.iters_per_epoch + it,
                  epoch_end=epoch_end, increase_ratio=self.weights.increase_ratio() if epoch_end else None,
                  vnet=self._vnet_curve(), **self.weights.window())

    def _check_finite(self) -> None:
        bad = self.steps.first_nonfinite()
        if bad is not None:
            raise Diverged(bad // self.iters_per_epoch, bad % self.iters_per_epoch)

    def _vnet_curve(self) -> dict[str, list[float]] | None:
        grid = torch.linspace(0, max(5.0, 2 * math.log(self.C)), 41, device=self.device)
        values = self.method.weight_function(grid.to(next(self.method.model.parameters()).dtype))
        if values is None:
            return None
        return {"loss": [round(v, 4) for v in grid.tolist()], "weight": [round(v, 6) for v in values.tolist()]}

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module) -> tuple[float, float, list[float]]:
        """Test loss, accuracy and per-class accuracy of one of the method's networks."""
        was_training = model.training
        model.eval()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros(self.C, device=self.device)
        count = torch.zeros(self.C, device=self.device)
        n = self.data.test.size
        bs = self.cfg["train"]["test_batch_size"]
        for start in range(0, n, bs):
            idx = torch.arange(start, min(n, start + bs))
            x = self.ctx.to_format(self.data.test.batch(idx, False, None))
            y = self.test_labels[idx.to(self.device)]
            logits = model(x)
            loss_sum += F.cross_entropy(logits.float(), y, reduction="sum")
            hit = (logits.argmax(1) == y).float()
            correct.index_add_(0, y, hit)
            count.index_add_(0, y, torch.ones_like(hit))
        model.train(was_training)
        per_class = (100 * correct / count.clamp(min=1)).tolist()
        return float(loss_sum) / n, 100 * float(correct.sum()) / n, per_class

    def _end_epoch(self, lr: float, train_s: float) -> None:
        t0 = time.time()
        # Every network the method trains is tested; the first one's accuracy is the run's.
        results = [self.evaluate(m) for m in self.eval_models]
        test_loss, test_acc, per_class = results[0]
        net_accs = [r[1] for r in results] if len(results) > 1 else None
        if test_acc > self.best_acc:
            self.best_acc, self.best_epoch = test_acc, self.epoch
        epoch_stats = self.steps.epoch_means()
        # The method's own fields (and a phase restart, GLC's) come after its networks were tested.
        self.ctx.epoch, self.ctx.iter = self.epoch, self.iter
        method_fields = {k: None for k in METHOD_EPOCH_FIELDS} | self.method.end_epoch(self.ctx)
        record = {"epoch": self.epoch, "test_loss": test_loss, "test_acc": test_acc, **epoch_stats}
        self.history.append(record)
        self.emit("epoch", epoch=self.epoch, test_loss=test_loss, test_acc=test_acc, per_class_acc=per_class,
                  lr=lr, best_acc=self.best_acc, epoch_s=train_s + time.time() - t0, train_s=train_s,
                  net_accs=net_accs, label_precision=self.steps.label_precision(), **epoch_stats, **method_fields)
        self.epoch += 1
        self.iter = 0
        self.epoch_perm = None
        self.checkpoint()
        self.update_summary(status="running")

    def checkpoint(self) -> None:
        checkpoint.save(self)
        self.emit("checkpoint", epoch=self.epoch, path=CHECKPOINT)

    def final_acc(self) -> float:
        """Mean test accuracy of the last train.final_epochs epochs (GLC: of its phase 2 only)."""
        k = self.cfg["train"]["final_epochs"]
        scored = [h["test_acc"] for h in self.history if h["epoch"] >= self.method.first_scored_epoch()]
        accs = scored[-k:]
        return sum(accs) / len(accs)

    def wall(self) -> float:
        return self.wall_before + (time.time() - self.segment_start)

    def update_summary(self, **fields: Any) -> None:
        s = read_summary(self.run_dir)
        s.update(
            epoch=self.epoch, epochs=self.epochs, wall_s=round(self.wall(), 3), device=str(self.device),
            best_acc=None if self.best_epoch < 0 else round(self.best_acc, 4),
            best_epoch=None if self.best_epoch < 0 else self.best_epoch + 1,  # summary.json is for people: 1-based
            last_test_acc=self.history[-1]["test_acc"] if self.history else None, pid=os.getpid(),
            **self.method.summary(),
        )
        s.update(fields)
        write_summary(self.run_dir, s)
