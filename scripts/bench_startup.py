"""Start-up cost of one run: `gdw run --headless PRESET --method M` against `python -c "import torch"`.

Runs each given `gdw` executable (e.g. an old checkout's venv and this one) N rounds, interleaved so
both share the machine's load, plus a bare `import torch` per round, and prints medians: command to
exit, to `run_start`, training (`wall_s` of `run_end`), `run_end` to exit, time outside training, and
that time over the median `import torch` (issue target: ≤ ~1.3×), both over the import alone (timed
inside the process) and over the whole `python -c "import torch"` process (which adds the
interpreter's start and its ~1 s teardown of torch; the figure earlier sessions reported).

    python scripts/bench_startup.py --rounds 5 --methods erm,gdw .venv/bin/gdw /path/to/old/.venv/bin/gdw
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def one_run(gdw: str, preset: str, method: str) -> dict[str, float]:
    runs = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    t0 = time.time()
    r = subprocess.run([gdw, "run", "--headless", preset, "--method", method, "--runs-dir", str(runs)],
                       capture_output=True, text=True)
    t_exit = time.time()
    if r.returncode != 0:
        sys.exit(f"{gdw} failed: {r.stderr.strip().splitlines()[-1:]}")
    run_dir = next(p for p in runs.iterdir() if p.is_dir())
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    start = next(e for e in events if e["type"] == "run_start")
    end = next(e for e in events if e["type"] == "run_end")
    return {"total": t_exit - t0, "to_run_start": start["t"] - t0, "train": end["wall_s"],
            "end_to_exit": t_exit - end["t"], "outside": t_exit - t0 - end["wall_s"]}


IMPORT_TORCH = "import time; t = time.perf_counter(); import torch; print(time.perf_counter() - t)"


def import_torch(python: str) -> tuple[float, float]:
    """(the import alone, timed inside the process; the whole `python -c "import torch"` process).

    The process also pays the interpreter's start and its teardown of torch (about 1 s here), which
    a run skips (engine/fast_exit.py); the import alone is the stricter yardstick.
    """
    t0 = time.time()
    r = subprocess.run([python, "-c", IMPORT_TORCH], check=True, capture_output=True, text=True)
    return float(r.stdout), time.time() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("gdw", nargs="+", help="gdw executables to compare")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--preset", default="digits-unif60")
    ap.add_argument("--methods", default="erm", help="comma-separated; each gdw runs each method every round")
    args = ap.parse_args()
    cases = [(gdw, method) for gdw in args.gdw for method in args.methods.split(",")]
    rows: dict[tuple[str, str], list[dict[str, float]]] = {c: [] for c in cases}
    torch_s: list[tuple[float, float]] = []
    for i in range(args.rounds):
        torch_s.append(import_torch(sys.executable))
        for gdw, method in cases if i % 2 == 0 else list(reversed(cases)):
            rows[gdw, method].append(one_run(gdw, args.preset, method))
        print(f"round {i + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    t_import = statistics.median(t for t, _ in torch_s)
    t_process = statistics.median(p for _, p in torch_s)
    out = {"import_torch_s": round(t_import, 2), "import_torch_process_s": round(t_process, 2), "runs": {}}
    for (gdw, method), rs in rows.items():
        med = {k: round(statistics.median(r[k] for r in rs), 2) for k in rs[0]}
        med["outside_over_import_torch"] = round(med["outside"] / t_import, 2)
        med["outside_over_import_torch_process"] = round(med["outside"] / t_process, 2)
        out["runs"][f"{gdw} --method {method}"] = med
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
