"""`gdw bench`: time one training iteration of each method, and the augmentation pipelines.

Every method is timed through the public API (`make_method(...).step`) on CIFAR-shaped random
data, after warm-up, over N iterations taken in turns: median, quartiles and the ratio to ERM. "gdw-naive"
is GDW written the authors' way (engine.bench_naive), timed side by side in the same process.
"""

from __future__ import annotations

import contextlib
import platform
import statistics
import time
from typing import Any, Callable

import torch

from .allocator import keep_freed_memory
from .config import SCHEMA, ConfigError
from .method_table import METHODS
from .optim import SGD
from .device import device_name, resolve_device

# Every method, and GDW written the authors' way; by default gdw-nozm is left out (it costs what gdw does).
BENCH_METHODS = (*METHODS, "gdw-naive")
DEFAULT_BENCH_METHODS = tuple(m for m in BENCH_METHODS if m != "gdw-nozm")
BENCH_ARCHS = ("resnet32", "digits_mlp")  # the CIFAR network and the small digits one


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _setup(method: str, arch: str, num_classes: int, device: torch.device, channels_last: bool, compile_: bool):
    from .methods import make_method
    from .models import build_model

    torch.manual_seed(0)
    in_shape = (64,) if arch == "digits_mlp" else (3, 32, 32)

    def build():
        return build_model(arch, num_classes, in_shape)

    model = build().to(device)
    if channels_last and len(in_shape) == 3:
        model = model.to(memory_format=torch.channels_last)
    train = {k: f.default for k, f in SCHEMA["train"].items()}
    opt = SGD(model.parameters(), lr=train["lr"], momentum=train["momentum"], weight_decay=train["weight_decay"])
    if method == "gdw-naive":
        from .bench_naive import NaiveGDW

        return NaiveGDW(model, build, num_classes, opt), in_shape
    extra = {}
    if method == "coteach":  # its second network, drawn after the first (as a run draws them)
        net2 = build().to(device)
        if channels_last and len(in_shape) == 3:
            net2 = net2.to(memory_format=torch.channels_last)
        extra = {"model2": net2, "optimizer2": SGD(net2.parameters(), lr=train["lr"], momentum=train["momentum"],
                                                               weight_decay=train["weight_decay"]), "forget_rate": 0.5}
    m = make_method(method, model, num_classes, opt, **extra)
    if method == "glc":
        # Timed in phase 2 (the corrected loss; phase 1 is ERM): a Ĉ with some corruption off the diagonal.
        eye = torch.eye(num_classes, dtype=torch.float64)
        m.c_hat = 0.6 * eye + 0.4 / num_classes
    if compile_:
        m.compile_training_forward()  # the plain forwards; the meta methods' functional passes stay eager
    return m, in_shape


def _batch(method: str, x, y, xm, ym):
    """The step's arguments: GLC joins 2% trusted samples to its batch (as a CIFAR run does, §9 of
    docs/algorithm.md); the meta methods take a meta batch; the others ignore it."""
    if method == "glc":
        k = max(1, round(0.02 * len(y)))
        return x, y, xm[:k], ym[:k]
    return x, y, xm, ym


def time_methods(
    methods: tuple[str, ...], arch: str = "resnet32", batch_size: int = 100, device: str = "cpu", warmup: int = 2,
    iters: int = 10, num_classes: int = 10, channels_last: bool = False, compile_: bool = False, bf16: bool = False,
    progress: Callable[[str], None] = lambda message: None,
) -> list[dict[str, Any]]:
    """Seconds per iteration of each method: median, quartiles, min, max over `iters` timed steps.

    The methods take turns, one iteration each per round, so a slow spell of the machine (a busy
    neighbour, a frequency drop) lands on all of them alike and the ratios stay meaningful.
    `progress` hears what is being done (a loaded machine takes minutes).
    """
    dev = resolve_device(device)
    if bf16 and dev.type != "cuda":
        raise ConfigError("--bf16 needs a CUDA device (bf16 autocast is a GPU option)")
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    steps = {}
    for n, method in enumerate(methods, 1):
        progress(f"setting up {method} ({n}/{len(methods)})")
        m, in_shape = _setup(method, arch, num_classes, dev, channels_last, compile_)
        g = torch.Generator().manual_seed(1)
        x = torch.randn(batch_size, *in_shape, generator=g).to(dev)
        y = torch.randint(0, num_classes, (batch_size,), generator=g).to(dev)
        xm = torch.randn(batch_size, *in_shape, generator=g).to(dev)
        ym = torch.randint(0, num_classes, (batch_size,), generator=g).to(dev)
        if channels_last and len(in_shape) == 3:
            x, xm = x.contiguous(memory_format=torch.channels_last), xm.contiguous(memory_format=torch.channels_last)
        steps[method] = (m, _batch(method, x, y, xm, ym))
    times: dict[str, list[float]] = {method: [] for method in methods}
    for i in range(warmup + iters):
        progress(f"round {i + 1}/{warmup + iters}{' (warm-up)' if i < warmup else ''}: one iteration of each method")
        for method, (m, batch) in steps.items():
            _sync(dev)
            t0 = time.perf_counter()
            with autocast:
                m.step(*batch, lr=0.1)
            _sync(dev)
            if i >= warmup:
                times[method].append(time.perf_counter() - t0)
    results = []
    for method, ts in times.items():
        q = statistics.quantiles(ts, n=4) if len(ts) >= 2 else [ts[0]] * 3
        results.append({"method": method, "median_s": statistics.median(ts), "p25_s": q[0], "p75_s": q[2],
                        "min_s": min(ts), "max_s": max(ts), "iters": iters})
    return results


def time_augmentation(device: str = "cpu", batch_size: int = 100, n_images: int = 5000) -> dict[str, float]:
    """Images per second: our batched tensor pipeline vs the per-image PIL pipeline."""
    import numpy as np

    from .data.augment import augment_batch, pil_augment_batch

    dev = resolve_device(device)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n_images, 32, 32, 3), dtype=np.uint8)  # HWC, as CIFAR is stored
    on_device = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().to(dev)
    gen = torch.Generator(device=dev).manual_seed(0)

    def ours() -> None:
        for start in range(0, n_images, batch_size):
            idx = torch.arange(start, min(n_images, start + batch_size), device=dev)
            augment_batch(on_device.index_select(0, idx), gen)
        _sync(dev)

    def pil() -> None:
        for start in range(0, min(n_images, 2000), batch_size):
            pil_augment_batch(images[start : start + batch_size]).to(dev)
        _sync(dev)

    ours()  # warm-up
    t0 = time.perf_counter()
    ours()
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    pil()
    t_pil = time.perf_counter() - t0
    return {"tensor_images_s": n_images / t_ours, "pil_images_s": min(n_images, 2000) / t_pil}


def run_bench(
    methods: tuple[str, ...] = DEFAULT_BENCH_METHODS, arch: str = "resnet32", batch_size: int = 100, device: str = "cpu",
    warmup: int = 2, iters: int = 10, num_classes: int = 10, channels_last: bool = False, compile_: bool = False,
    bf16: bool = False, augmentation: bool = True, threads: int | None = None, malloc_tuning: bool = True,
    progress: Callable[[str], None] = lambda message: None,
) -> dict[str, Any]:
    for m in methods:
        if m not in BENCH_METHODS:
            raise ConfigError(f"unknown method '{m}' for bench; valid: {', '.join(BENCH_METHODS)}")
    if arch not in BENCH_ARCHS:
        raise ConfigError(f"--arch must be {' or '.join(BENCH_ARCHS)} (got {arch!r})")
    if threads:
        torch.set_num_threads(threads)
    if malloc_tuning:
        malloc_tuning = keep_freed_memory()
    dev = resolve_device(device)
    results = time_methods(methods, arch, batch_size, device, warmup, iters, num_classes, channels_last, compile_, bf16,
                           progress)
    by_name = {r["method"]: r for r in results}
    for r in results:
        r["x_erm"] = r["median_s"] / by_name["erm"]["median_s"] if "erm" in by_name else None
    out: dict[str, Any] = {
        "device": str(dev), "device_name": device_name(dev), "threads": torch.get_num_threads(),
        "torch": torch.__version__, "python": platform.python_version(), "arch": arch, "batch_size": batch_size,
        "num_classes": num_classes, "options": {"channels_last": channels_last, "compile": compile_, "bf16": bf16, "malloc_tuning": malloc_tuning},
        "methods": results,
    }
    if "gdw" in by_name and "mwnet" in by_name:
        out["gdw_over_mwnet"] = by_name["gdw"]["median_s"] / by_name["mwnet"]["median_s"]
    if "insw" in by_name and "mwnet" in by_name:
        out["insw_over_mwnet"] = by_name["insw"]["median_s"] / by_name["mwnet"]["median_s"]
    if "gdw" in by_name and "gdw-naive" in by_name:
        out["naive_over_gdw"] = by_name["gdw-naive"]["median_s"] / by_name["gdw"]["median_s"]
    if augmentation:
        progress("timing the augmentation pipelines")
        out["augmentation"] = time_augmentation(device, batch_size)
    return out
