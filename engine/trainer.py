"""The training loop of one run: data, model, method, per-epoch cosine LR, test, events, checkpoints.

`train_run(run_dir)` runs (or, with resume=True, continues) the run whose config.toml is in
run_dir. It writes events.jsonl and summary.json as it goes, checkpoints atomically at the end
of every epoch and on a requested stop, and reports failures itself.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import platform
import random
import time
import traceback
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from . import __version__
from .allocator import keep_freed_memory
from .config import ConfigError, cuda_index, resolved_arch
from .events import SCHEMA_VERSION, EventWriter
from .heartbeat import Heartbeat
from .method_table import HYPERPARAMETERS
from .rundir import CHECKPOINT, EVENTS, checkpoint_path, resume_refusal
from .runs import acquire_lock, fsync_dir, load_run_config, read_summary, write_summary
from .signals import STOP
from .stats import StepAccumulator, WeightAccumulator

# torch.func.jvp loads torch's JVP decompositions, which call the deprecated torch.jit.script
# inside torch itself: a FutureWarning on every run's stderr that the user can do nothing about.
warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)



class Diverged(RuntimeError):
    def __init__(self, epoch: int, it: int):
        super().__init__(f"diverged at epoch {epoch + 1}, iteration {it + 1}: non-finite loss or weight")
        self.epoch, self.it = epoch, it


class StopRequested(Exception):
    pass


# --- configuration and device ------------------------------------------------------------------


def resolve_device(spec: str) -> torch.device:
    """auto → CUDA when present, else CPU; an unavailable device is a one-line ConfigError."""
    spec = spec.strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return torch.device(f"cuda:{cuda_index(spec, count)}")


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def one_line(e: BaseException) -> str:
    """`Type: first line of the message`, for failure events and summaries."""
    text = str(e).splitlines()[0] if str(e) else ""
    return f"{type(e).__name__}: {text}".rstrip(": ")


def cosine_lr(base_lr: float, epoch: int, epochs: int) -> float:
    """lr_e = lr · (1 + cos(π e / E)) / 2, set once per epoch (GDW-SPEC §5)."""
    return base_lr * (1 + math.cos(math.pi * epoch / epochs)) / 2


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# --- the run ------------------------------------------------------------------------------------


class Run:
    """Everything one run holds; `train()` is the loop."""

    def __init__(self, run_dir: Path, cfg: dict[str, Any], device: torch.device, on_event: Callable | None):
        from .data import load_data
        from .methods import make_method
        from .models import build_model

        self.run_dir, self.cfg, self.device = run_dir, cfg, device
        self.on_event = on_event
        train = cfg["train"]
        self.epochs = train["epochs"]
        seed_everything(train["seed"])
        if device.type == "cpu":
            threads = train["threads"] or (1 if resolved_arch(cfg) == "digits_mlp" else torch.get_num_threads())
            torch.set_num_threads(threads)
        self.data = load_data(cfg, device)
        self.C = self.data.num_classes
        self.model = build_model(resolved_arch(cfg), self.C, tuple(self.data.in_shape), cfg["model"]["pretrained"]).to(device)
        if train["channels_last"] and len(self.data.in_shape) == 3:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.SGD(
            self.model.parameters(), lr=train["lr"], momentum=train["momentum"], weight_decay=train["weight_decay"]
        )
        self.method = make_method(train["method"], self.model, self.C, self.optimizer,
                                  **{k: train[k] for k in HYPERPARAMETERS})
        self.eval_model = torch.compile(self.model) if train["compile"] else self.model
        # bf16 autocast is a GPU option; on a CPU it is reported and ignored.
        self.bf16 = train["bf16"] and device.type == "cuda"
        self.autocast = torch.autocast("cuda", dtype=torch.bfloat16) if self.bf16 else contextlib.nullcontext()

        # Labels live on the device; index order and augmentation come from generators whose
        # states are checkpointed, so a resumed run draws exactly what the uninterrupted one would.
        self.train_labels = self.data.train.labels.to(device)
        self.train_true = self.data.train.true_labels.to(device)
        self.meta_labels = self.data.meta.labels.to(device)
        self.test_labels = self.data.test.labels.to(device)
        self.order_gen = torch.Generator().manual_seed(train["seed"])
        self.meta_gen = torch.Generator().manual_seed(train["seed"] + 1)
        self.aug_gen = torch.Generator(device=device).manual_seed(train["seed"] + 2)
        self.batch_size = train["batch_size"]
        self.meta_batch_size = min(train["meta_batch_size"] or self.batch_size, self.data.meta.size)
        n = self.data.train.size
        self.iters_per_epoch = max(1, math.ceil(n / self.batch_size) - (1 if n % self.batch_size == 1 else 0))
        self.augment = self.data.augment_default

        # Progress state (checkpointed).
        self.epoch = 0
        self.iter = 0  # next iteration within the epoch
        self.epoch_perm: torch.Tensor | None = None
        self.meta_perm = torch.empty(0, dtype=torch.long)
        self.meta_pos = 0
        self.history: list[dict[str, Any]] = []
        self.best_acc, self.best_epoch = -1.0, -1
        self.wall_before = 0.0  # wall seconds of earlier segments
        self.steps = StepAccumulator(device, method=train["method"])
        self.weights = WeightAccumulator(self.C, device, method=train["method"], batch_size=self.batch_size)

    # -- events ----------------------------------------------------------------------------------

    def emit(self, type_: str, **fields: Any) -> None:
        event = self.writer.emit(type_, **fields)
        if self.on_event is not None:
            self.on_event(event)

    # -- data ------------------------------------------------------------------------------------

    def _next_meta_indices(self) -> torch.Tensor:
        """Cycle through the meta set in freshly shuffled passes."""
        if self.meta_pos >= len(self.meta_perm):
            self.meta_perm = torch.randperm(self.data.meta.size, generator=self.meta_gen)
            self.meta_pos = 0
        idx = self.meta_perm[self.meta_pos : self.meta_pos + self.meta_batch_size]
        self.meta_pos += self.meta_batch_size
        return idx

    # -- checkpoints -----------------------------------------------------------------------------

    def checkpoint(self) -> None:
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "method": self.method.state_dict(),
            "epoch": self.epoch,
            "iter": self.iter,
            "epoch_perm": self.epoch_perm,
            "meta_perm": self.meta_perm,
            "meta_pos": self.meta_pos,
            "history": self.history,
            "best_acc": self.best_acc,
            "best_epoch": self.best_epoch,
            "wall_s": self.wall(),
            "order_gen": self.order_gen.get_state(),
            "meta_gen": self.meta_gen.get_state(),
            "aug_gen": self.aug_gen.get_state(),
            "torch_rng": torch.get_rng_state(),
            "numpy_rng": np.random.get_state(),
            "python_rng": random.getstate(),
            "steps": self.steps.state_dict(),
            "weights": self.weights.state_dict(),
        }
        path = checkpoint_path(self.run_dir)
        folder = path.parent
        folder.mkdir(exist_ok=True)
        tmp = folder / f".{path.name}.tmp"
        try:
            with open(tmp, "wb") as f:
                torch.save(state, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)  # the last good checkpoint is replaced only by a complete one
            fsync_dir(folder)  # and the rename itself survives a power cut
        except BaseException:
            # A full disk or a second signal mid-write: drop the partial file (it holds space a
            # resume needs); the previous checkpoint is untouched.
            tmp.unlink(missing_ok=True)
            raise
        self.emit("checkpoint", epoch=self.epoch, path=CHECKPOINT)

    def restore(self) -> None:
        path = checkpoint_path(self.run_dir)  # its existence was checked by resume_refusal
        try:
            state = torch.load(path, map_location=self.device, weights_only=False)
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.method.load_state_dict(state["method"])
        except Exception as e:  # a truncated or foreign file
            raise ConfigError(f"checkpoint {path} is corrupt or does not match this run: {one_line(e)}") from None
        self.epoch, self.iter = state["epoch"], state["iter"]
        self.epoch_perm, self.meta_perm, self.meta_pos = state["epoch_perm"], state["meta_perm"], state["meta_pos"]
        self.history = state["history"]
        self.best_acc, self.best_epoch = state["best_acc"], state["best_epoch"]
        self.wall_before = state["wall_s"]
        self.order_gen.set_state(state["order_gen"])
        self.meta_gen.set_state(state["meta_gen"])
        self.aug_gen.set_state(state["aug_gen"])
        torch.set_rng_state(state["torch_rng"])
        np.random.set_state(state["numpy_rng"])
        random.setstate(state["python_rng"])
        self.steps.load_state_dict(state["steps"])
        self.weights.load_state_dict(state["weights"])
        if self.epoch_perm is not None:
            self.epoch_perm = self.epoch_perm.cpu()
        self.meta_perm = self.meta_perm.cpu()

    # -- the loop --------------------------------------------------------------------------------

    def start_event(self, resumed: bool) -> None:
        d = self.data
        self.emit(
            "run_start",
            run_id=self.run_dir.name, preset=self.cfg.get("preset", ""), title=self.cfg.get("title", ""),
            config={k: self.cfg[k] for k in ("data", "model", "train")},
            method=self.cfg["train"]["method"], seed=self.cfg["train"]["seed"],
            device=str(self.device), device_name=device_name(self.device),
            classes=list(d.classes), num_classes=self.C, epochs=self.epochs, iters_per_epoch=self.iters_per_epoch,
            counts={
                "train": d.train.size, "meta": d.meta.size, "test": d.test.size,
                "train_per_class": list(d.train_per_class), "meta_per_class": list(d.meta_per_class),
            },
            noise={
                "kind": self.cfg["data"]["noise"], "rate": self.cfg["data"]["noise_rate"],
                "imbalance": self.cfg["data"]["imbalance"], "measured_rate": d.measured_noise_rate,
                "matrix": d.noise_matrix,
            },
            versions={
                "engine": __version__, "python": platform.python_version(), "torch": torch.__version__,
                "torchvision": _torchvision_version(), "schema": SCHEMA_VERSION,
            },
            pid=os.getpid(), resumed=resumed, start_epoch=self.epoch,
        )
        if self.cfg["train"]["bf16"] and not self.bf16:
            self.emit("log", level="warning", message=f"train.bf16 applies to CUDA only; ignored on {self.device}")
        if d.measured_noise_rate > 0:
            self.emit("log", level="info", message=f"measured label corruption: {100 * d.measured_noise_rate:.2f}% of {d.train.size} training labels")

    def train(self) -> None:
        events_on = self.cfg["train"]["events"]
        step_interval = 1.0 / self.cfg["train"]["step_events_per_s"]
        weights_every = max(1, math.ceil(self.iters_per_epoch / self.cfg["train"]["weights_events_per_epoch"]))
        while self.epoch < self.epochs:
            lr = cosine_lr(self.cfg["train"]["lr"], self.epoch, self.epochs)
            epoch_start = time.time()
            if self.iter == 0 or self.epoch_perm is None:
                self.epoch_perm = torch.randperm(self.data.train.size, generator=self.order_gen)
                self.steps.reset_epoch()
                self.weights.reset_epoch()
            last_step_event = time.time()
            while self.iter < self.iters_per_epoch:
                it = self.iter
                idx = self.epoch_perm[it * self.batch_size : (it + 1) * self.batch_size]
                idx_dev = idx.to(self.device, non_blocking=True)
                x = self._to_format(self.data.train.batch(idx, self.augment, self.aug_gen))
                y, y_true = self.train_labels[idx_dev], self.train_true[idx_dev]
                x_meta = y_meta = None
                if self.method.uses_meta:
                    meta_idx = self._next_meta_indices()
                    x_meta = self._to_format(self.data.meta.batch(meta_idx, self.augment, self.aug_gen))
                    y_meta = self.meta_labels[meta_idx.to(self.device, non_blocking=True)]
                with self.autocast:
                    stats = self.method.step(x, y, x_meta, y_meta, lr=lr)
                self.steps.add(stats, y, y_true, y_meta, self.epoch * self.iters_per_epoch + it)
                if events_on:
                    self.weights.add(stats, y, y_true)
                self.iter += 1
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
                if STOP.reason is not None:
                    raise StopRequested
            self._check_finite()
            if events_on:
                self._emit_weights(self.iter - 1, epoch_end=True)
            self._end_epoch(lr, time.time() - epoch_start)

    def _emit_weights(self, it: int, epoch_end: bool) -> None:
        """A weights snapshot since the last one; Table 6's increase ratio only at an epoch's end."""
        self.emit("weights", epoch=self.epoch, iter=it, global_iter=self.epoch * self.iters_per_epoch + it,
                  epoch_end=epoch_end, increase_ratio=self.weights.increase_ratio() if epoch_end else None,
                  vnet=self._vnet_curve(), **self.weights.window())

    def _to_format(self, x: torch.Tensor) -> torch.Tensor:
        if self.cfg["train"]["channels_last"] and x.dim() == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def _check_finite(self) -> None:
        bad = self.steps.first_nonfinite()
        if bad is not None:
            raise Diverged(bad // self.iters_per_epoch, bad % self.iters_per_epoch)

    def _vnet_curve(self) -> dict[str, list[float]] | None:
        grid = torch.linspace(0, max(5.0, 2 * math.log(self.C)), 41, device=self.device)
        values = self.method.weight_function(grid.to(next(self.model.parameters()).dtype))
        if values is None:
            return None
        return {"loss": [round(v, 4) for v in grid.tolist()], "weight": [round(v, 6) for v in values.tolist()]}

    @torch.no_grad()
    def evaluate(self) -> tuple[float, float, list[float]]:
        self.model.eval()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros(self.C, device=self.device)
        count = torch.zeros(self.C, device=self.device)
        n = self.data.test.size
        bs = self.cfg["train"]["test_batch_size"]
        for start in range(0, n, bs):
            idx = torch.arange(start, min(n, start + bs))
            x = self._to_format(self.data.test.batch(idx, False, None))
            y = self.test_labels[idx.to(self.device)]
            logits = self.eval_model(x)
            loss_sum += F.cross_entropy(logits.float(), y, reduction="sum")
            hit = (logits.argmax(1) == y).float()
            correct.index_add_(0, y, hit)
            count.index_add_(0, y, torch.ones_like(hit))
        self.model.train()
        per_class = (100 * correct / count.clamp(min=1)).tolist()
        return float(loss_sum) / n, 100 * float(correct.sum()) / n, per_class

    def _end_epoch(self, lr: float, train_s: float) -> None:
        t0 = time.time()
        test_loss, test_acc, per_class = self.evaluate()
        if test_acc > self.best_acc:
            self.best_acc, self.best_epoch = test_acc, self.epoch
        epoch_stats = self.steps.epoch_means()
        record = {"epoch": self.epoch, "test_loss": test_loss, "test_acc": test_acc, **epoch_stats}
        self.history.append(record)
        self.emit("epoch", epoch=self.epoch, test_loss=test_loss, test_acc=test_acc, per_class_acc=per_class,
                  lr=lr, best_acc=self.best_acc, epoch_s=train_s + time.time() - t0, train_s=train_s, **epoch_stats)
        self.epoch += 1
        self.iter = 0
        self.epoch_perm = None
        self.checkpoint()
        self.update_summary(status="running")

    def final_acc(self) -> float:
        k = self.cfg["train"]["final_epochs"]
        accs = [h["test_acc"] for h in self.history[-k:]]
        return sum(accs) / len(accs)

    def wall(self) -> float:
        return self.wall_before + (time.time() - self.segment_start)

    def update_summary(self, **fields: Any) -> None:
        s = read_summary(self.run_dir)
        s.update(
            epoch=self.epoch, epochs=self.epochs, wall_s=round(self.wall(), 3), device=str(self.device),
            best_acc=None if self.best_epoch < 0 else round(self.best_acc, 4),
            best_epoch=None if self.best_epoch < 0 else self.best_epoch,
            last_test_acc=self.history[-1]["test_acc"] if self.history else None, pid=os.getpid(),
        )
        s.update(fields)
        write_summary(self.run_dir, s)


def _torchvision_version() -> str:
    try:
        import torchvision

        return torchvision.__version__
    except Exception:  # pragma: no cover
        return "unavailable"


# --- entry point ------------------------------------------------------------------------------


def train_run(run_dir: Path, resume: bool = False, on_event: Callable[[dict], None] | None = None) -> dict[str, Any]:
    """Run (or resume) the run in run_dir. Returns the final summary.

    ConfigError (bad input: unusable config, device, dataset files, checkpoint, a run already
    running) is raised before anything is marked running. Everything after that is reported
    in events.jsonl and summary.json: finished, stopped or failed (then the exception is re-raised).
    """
    installed_here = STOP.install()  # `python -m engine` installs it earlier, before importing torch
    try:
        return _train_run(Path(run_dir), resume, on_event)
    finally:
        if installed_here:
            STOP.uninstall()


def _train_run(run_dir: Path, resume: bool, on_event: Callable[[dict], None] | None) -> dict[str, Any]:
    keep_freed_memory()
    cfg = load_run_config(run_dir)
    lock_fd = acquire_lock(run_dir)  # from here on no other engine runs this run
    heartbeat = Heartbeat(run_dir).start()  # the lock is invisible from other hosts (Slurm); this is not
    try:
        if resume:
            # The same rule as `gdw resume` and the UI's R. We hold the lock, so a summary that
            # still says running is an engine that died: interrupted.
            status = read_summary(run_dir).get("status", "created")
            refusal = resume_refusal(run_dir, "interrupted" if status == "running" else status)
            if refusal:
                raise ConfigError(f"run {run_dir.name} {refusal}")
        device = resolve_device(cfg["train"]["device"])
        if not resume and (run_dir / EVENTS).exists() and (run_dir / EVENTS).stat().st_size > 0:
            raise ConfigError(f"run {run_dir.name} has already started; use `gdw resume {run_dir.name}`")
        try:
            run = Run(run_dir, cfg, device, on_event)
            if resume:
                run.restore()
        except ConfigError:
            raise
        except BaseException as e:  # building the data or the model failed: reported like any failure
            _report_setup_failure(run_dir, e, on_event)
            raise
        return _execute(run, resume)
    finally:
        heartbeat.stop()
        os.close(lock_fd)


def _report_setup_failure(run_dir: Path, e: BaseException, on_event: Callable[[dict], None] | None) -> None:
    if isinstance(e, KeyboardInterrupt):
        message, tb = "interrupted during setup, before training started", None
    else:
        message = one_line(e)
        tb = traceback.format_exc()
    try:
        writer = EventWriter(run_dir / EVENTS)
        try:
            event = writer.emit("failure", kind="error", message=message, traceback=tb, epoch=None, iter=None)
        finally:
            writer.close()
        if on_event is not None:
            on_event(event)
        summary = read_summary(run_dir)
        summary.update(status="failed", message=message, ended=time.time())
        write_summary(run_dir, summary)
    except OSError:
        pass  # a full disk: the exception still propagates


def _execute(run: Run, resume: bool) -> dict[str, Any]:
    run.segment_start = time.time()
    run.writer = EventWriter(run.run_dir / EVENTS, enabled=True)
    try:
        if resume:
            run.emit("resume", from_epoch=run.epoch, from_iter=run.iter, checkpoint=CHECKPOINT)
        run.start_event(resumed=resume)
        run.update_summary(status="running", started=read_summary(run.run_dir).get("started") or time.time(), message="")
        try:
            run.train()
        except StopRequested:
            run.checkpoint()
            run.emit("stopped", epoch=run.epoch, iter=run.iter, reason=STOP.reason)
            run.update_summary(status="stopped", ended=time.time(), message=f"stopped ({STOP.reason}) at epoch {run.epoch + 1}, iteration {run.iter}")
            return read_summary(run.run_dir)
        final = run.final_acc()
        run.emit("run_end", final_acc=round(final, 4), best_acc=round(run.best_acc, 4), best_epoch=run.best_epoch,
                 wall_s=round(run.wall(), 3))
        run.update_summary(status="finished", final_acc=round(final, 4), ended=time.time(), message="")
        return read_summary(run.run_dir)
    except BaseException as e:
        _report_failure(run, e)
        raise
    finally:
        run.writer.close()


def _report_failure(run: Run, e: BaseException) -> None:
    epoch = run.epoch if run.epoch < run.epochs else None
    if isinstance(e, Diverged):
        kind, message, tb, it = "diverged", str(e), None, e.it
        epoch = e.epoch
    elif isinstance(e, torch.cuda.OutOfMemoryError):
        memory = ""
        if run.device.type == "cuda":
            memory = f" ({torch.cuda.get_device_properties(run.device).total_memory / 2**30:.1f} GiB total)"
        kind, it = "oom", run.iter
        message = (f"CUDA out of memory with train.batch_size={run.batch_size} on {run.device}{memory}; "
                   f"lower train.batch_size")
        tb = traceback.format_exc()
    elif isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
        # A full disk or a read-only runs directory: say so plainly; checkpoints are written
        # atomically, so the last good one is still there to resume from.
        kind, it = "error", run.iter
        where = f" writing {e.filename}" if e.filename else ""
        then = (f"`gdw resume {run.run_dir.name}` (the last good checkpoint is kept)"
                if checkpoint_path(run.run_dir).exists() else "start the run again")
        message = f"cannot write the run's files ({e.strerror}{where}); free space or make {run.run_dir} writable, then {then}"
        tb = traceback.format_exc()
    elif isinstance(e, KeyboardInterrupt):
        kind, it, message, tb = "error", run.iter, "interrupted by a second signal before a clean stop", None
    else:
        kind, it = "error", run.iter
        message = one_line(e)
        tb = traceback.format_exc()
    # On a full disk either write may fail; each is tried, and the exception still propagates.
    try:
        run.emit("failure", kind=kind, message=message, traceback=tb, epoch=epoch, iter=it)
    except OSError:
        pass
    try:
        run.update_summary(status="failed", ended=time.time(), message=message)
    except OSError:
        pass
