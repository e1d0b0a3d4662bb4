"""GPU packing: total training images/s of N ResNet-32 runs sharing one GPU, for N in --per-gpu.

    .venv/bin/python scripts/bench_packing.py --per-gpu 1,2,4,8 --method gdw --seconds 15

Each of the N runs is its own process (as a sweep's runs are, `--per-gpu N`) on the same GPU
(CUDA_VISIBLE_DEVICES), training one method's steps on random CIFAR-shaped batches. All N warm
up, then train together for --seconds; the figure is the sum of their images/s. Small models
leave most of a modern GPU idle, so packing several runs on one card is where a sweep's speed
comes from. Needs a CUDA device: on a machine without one it says so (one line, exit 2).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def worker(args: argparse.Namespace) -> int:
    import torch

    from engine.bench import _setup

    dev = torch.device("cuda:0")
    m, in_shape = _setup(args.method, "resnet32", 10, dev, args.channels_last, False)
    g = torch.Generator().manual_seed(1)
    batch = [torch.randn(args.batch_size, *in_shape, generator=g).to(dev), torch.randint(0, 10, (args.batch_size,), generator=g).to(dev),
             torch.randn(args.batch_size, *in_shape, generator=g).to(dev), torch.randint(0, 10, (args.batch_size,), generator=g).to(dev)]
    if args.channels_last:
        batch[0], batch[2] = (b.contiguous(memory_format=torch.channels_last) for b in (batch[0], batch[2]))
    for _ in range(5):
        m.step(*batch, lr=0.1)
    torch.cuda.synchronize()
    print("ready", flush=True)
    go = Path(args.go)
    while not go.exists():
        time.sleep(0.005)
    t0 = time.perf_counter()
    iters = 0
    while time.perf_counter() - t0 < args.seconds:
        m.step(*batch, lr=0.1)
        iters += 1
        if iters % 10 == 0:
            torch.cuda.synchronize()
    torch.cuda.synchronize()
    elapsed = time.perf_counter() - t0
    print(json.dumps({"images_s": iters * args.batch_size / elapsed, "iters": iters, "seconds": elapsed,
                      "max_mem_mib": torch.cuda.max_memory_allocated() / 2**20}), flush=True)
    return 0


def measure(n: int, args: argparse.Namespace) -> dict:
    go = Path(tempfile.mkdtemp(prefix="gdw-pack-")) / "go"
    cmd = [sys.executable, __file__, "--worker", "--method", args.method, "--seconds", str(args.seconds),
           "--batch-size", str(args.batch_size), "--go", str(go)] + (["--channels-last"] if args.channels_last else [])
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": str(args.gpu), "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT) for _ in range(n)]
    for p in procs:
        line = p.stdout.readline().strip()
        if line != "ready":
            raise SystemExit(f"error: a packing worker did not start (got {line!r}; exit {p.wait()})")
    go.touch()
    results = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    return {"runs": n, "total_images_s": sum(r["images_s"] for r in results),
            "per_run_images_s": sum(r["images_s"] for r in results) / n,
            "max_mem_mib_per_run": max(r["max_mem_mib"] for r in results)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-gpu", default="1,2,4,8", help="comma-separated run counts")
    parser.add_argument("--method", default="gdw", help="erm, l2rw, mwnet or gdw")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--gpu", type=int, default=0)
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--go", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    from engine.config import METHODS
    from engine.launch import cuda_device_count

    try:
        counts = [int(x) for x in args.per_gpu.split(",")]
        assert counts and all(c >= 1 for c in counts)
    except (ValueError, AssertionError):
        print(f"error: --per-gpu must list run counts >= 1, e.g. 1,2,4,8 (got {args.per_gpu!r})", file=sys.stderr)
        return 2
    if args.method not in METHODS:
        print(f"error: unknown method '{args.method}'; valid methods: {', '.join(METHODS)}", file=sys.stderr)
        return 2
    visible = cuda_device_count()
    if visible == 0:
        print("error: the packing benchmark needs a CUDA device and this machine has none (run it on a GPU machine, e.g. scripts/gpu_check.sh)", file=sys.stderr)
        return 2
    if args.gpu >= visible:
        print(f"error: --gpu {args.gpu} is not available: this machine has {visible} CUDA device(s)", file=sys.stderr)
        return 2
    rows = [measure(n, args) for n in counts]
    base = rows[0]["total_images_s"]
    if args.json:
        print(json.dumps({"method": args.method, "batch_size": args.batch_size, "rows": rows}, indent=2))
        return 0
    print(f"ResNet-32 · {args.method} · batch {args.batch_size} · GPU {args.gpu} · {args.seconds:.0f} s per point")
    print(f"{'runs':>4}  {'total img/s':>12}  {'per run':>9}  {'× 1 run':>7}  {'MiB/run':>8}")
    for r in rows:
        print(f"{r['runs']:>4}  {r['total_images_s']:>12,.0f}  {r['per_run_images_s']:>9,.0f}  "
              f"{r['total_images_s'] / base:>7.2f}  {r['max_mem_mib_per_run']:>8,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
