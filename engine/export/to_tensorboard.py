"""Records to TensorBoard event files, with TensorBoard's own writer and protos (no TensorFlow, no torch).

Scalars by iteration and by epoch, the target-weight histograms, the ω and Table 6 heatmaps as
images, the resolved config as hyperparameters (the HParams dashboard), and config.toml,
summary.json and the run's tags as text.
"""

from __future__ import annotations

import time
from pathlib import Path

from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import HistogramProto, Summary
from tensorboard.plugins.hparams import summary_v2 as hparams_summary
from tensorboard.plugins.text import summary_v2 as text_summary
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from .records import Histogram, Image, Record, RunInfo, Scalar


class TensorBoardSink:
    """One run's event file in `logdir`. `flush_s`: how often the writer's own thread flushes (live: often)."""

    def __init__(self, logdir: Path, flush_s: float = 120.0):
        self.logdir = Path(logdir)
        self.logdir.mkdir(parents=True, exist_ok=True)
        self.writer = EventFileWriter(str(self.logdir), max_queue_size=1000, flush_secs=flush_s)

    def _add(self, summary: Summary, step: int, wall: float | None = None) -> None:
        self.writer.add_event(Event(wall_time=wall or time.time(), step=step, summary=summary))

    def start(self, info: RunInfo) -> None:
        start = float(info.summary.get("started") or info.summary.get("created") or time.time())
        self._add(hparams_summary.hparams_pb(info.hparams(), trial_id=info.run_id, start_time_secs=start), 0, start)
        tags = "\n".join(f"- **{k}**: {v}" for k, v in info.tags().items())
        self._add(text_summary.text_pb("run/tags", tags), 0, start)
        for path in info.artifacts():
            if path.name == "config.toml":  # summary.json changes until the run ends: written by finish()
                self._add(text_summary.text_pb(f"run/{path.name}", _code(path.read_text(encoding="utf-8"))), 0, start)

    def write(self, records: list[Record]) -> None:
        for r in records:
            if isinstance(r, Scalar):
                summary = Summary(value=[Summary.Value(tag=r.tag, simple_value=r.value)])
            elif isinstance(r, Histogram):
                summary = Summary(value=[Summary.Value(tag=r.tag, histo=_histogram(r))])
            elif isinstance(r, Image):
                png = r.png()
                size = _png_size(png)
                image = Summary.Image(height=size[1], width=size[0], colorspace=3, encoded_image_string=png)
                summary = Summary(value=[Summary.Value(tag=f"images/{r.tag}", image=image)])
            else:  # pragma: no cover - every record kind is handled above
                continue
            self._add(summary, r.step, r.wall)

    def finish(self, info: RunInfo) -> None:
        step = info.epochs_done()
        for key, value in info.figures().items():
            self._add(Summary(value=[Summary.Value(tag=f"summary/{key}", simple_value=value)]), step)
        for path in info.artifacts():
            if path.name != "config.toml":
                self._add(text_summary.text_pb(f"run/{path.name}", _code(path.read_text(encoding="utf-8"))), step)
        self.flush()

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def _code(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())  # Markdown: shown as code, verbatim


def _histogram(h: Histogram) -> HistogramProto:
    centres = [(a + b) / 2 for a, b in zip(h.edges, h.edges[1:])]
    total = sum(h.counts)
    return HistogramProto(
        min=h.edges[0], max=h.edges[-1], num=total,
        sum=sum(c * x for c, x in zip(h.counts, centres)),
        sum_squares=sum(c * x * x for c, x in zip(h.counts, centres)),
        bucket_limit=h.edges[1:], bucket=h.counts,
    )


def _png_size(png: bytes) -> tuple[int, int]:
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
