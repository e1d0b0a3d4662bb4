"""Plain one-line progress messages for events: for logs, nohup and batch jobs (torch-free)."""

from __future__ import annotations

from typing import Any


def _f(x: Any, spec: str = ".4f") -> str:
    return "-" if x is None else format(x, spec)


def step_line(event: dict[str, Any], iters_per_epoch: int | None = None) -> str:
    """A progress line for a step event (printed every so often when stdout is not a terminal)."""
    of = f"/{iters_per_epoch}" if iters_per_epoch else ""
    return (f"epoch {event['epoch'] + 1} it {event['iter'] + 1}{of}: loss={_f(event.get('loss'))} "
            f"meta_loss={_f(event.get('meta_loss'))} train_acc*={_f(event.get('train_acc'), '.2f')} "
            f"{_f(event.get('it_s'), '.2f')} it/s")


def plain_line(event: dict[str, Any]) -> str | None:
    """The line to print for an event, or None for events not worth a line."""
    kind = event.get("type")
    if kind == "run_start":
        n = event.get("counts", {})
        noise = event.get("noise", {})
        return (f"run {event['run_id']}: {event['method']} on {event['device']} ({event.get('device_name', '')}) · "
                f"{n.get('train')} train / {n.get('meta')} meta / {n.get('test')} test · "
                f"noise {noise.get('kind')} {noise.get('rate')} (measured {100 * noise.get('measured_rate', 0):.2f}%) · "
                f"{event['epochs']} epoch{'' if event['epochs'] == 1 else 's'} × {event['iters_per_epoch']} it"
                + (f" · resumed at epoch {event['start_epoch'] + 1}" if event.get("resumed") else ""))
    if kind == "epoch":
        return (f"epoch {event['epoch'] + 1}: test_acc={event['test_acc']:.2f} test_loss={event['test_loss']:.4f} "
                f"train_loss={_f(event.get('train_loss'))} meta_loss={_f(event.get('meta_loss'))} "
                f"lr={event['lr']:.5f} best={event['best_acc']:.2f} ({event['epoch_s']:.1f}s)")
    if kind == "log" and event.get("level") != "info":
        return f"{event['level']}: {event['message']}"
    if kind == "stopped":
        return f"stopped ({event['reason']}) at {stopped_at(event['epoch'], event['iter'])}; resume with `gdw resume`"
    if kind == "failure":
        return f"failed: {event['message']}"
    if kind == "run_end":
        return f"finished: final_acc={event['final_acc']:.2f} best_acc={event['best_acc']:.2f} in {event['wall_s']:.1f}s"
    return None


def stopped_at(epoch: int, it: int) -> str:
    """Where a stopped run stands, for people (1-based): the `stopped` event's 0-based epoch and the
    iterations of it already done."""
    return f"epoch {epoch + 1}, after iteration {it}" if it else f"the start of epoch {epoch + 1}"


def one_line(e: BaseException) -> str:
    """`Type: first line of the message`, for failure events and summaries."""
    text = str(e).splitlines()[0] if str(e) else ""
    return f"{type(e).__name__}: {text}".rstrip(": ")
