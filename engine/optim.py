"""The optimisers the engine builds: torch.optim's SGD and Adam, without importing torch._dynamo.

Why: every public method of `torch.optim.Optimizer` that a run calls — `add_param_group` (from the
constructor), `zero_grad`, `state_dict`, `load_state_dict` and each optimiser's `step` — is wrapped by
torch so that torch.compile does not trace it, and that wrapper imports `torch._dynamo` on its first
call: 1.6–1.9 s of a 2-core machine, most of what a short run spends outside training beyond
`import torch` itself (and every run of a sweep paid it once more in its own process).

These subclasses call the same methods with the wrappers peeled off (`inspect.unwrap` follows the
`__wrapped__` that `functools.wraps` leaves), so the update kernels, the state_dict format and every
number are torch.optim's own: checkpoints written with `torch.optim.SGD`/`Adam` load into these and
back. The wrappers matter only inside a torch.compile'd region; the engine calls its optimisers from
eager code only (train.compile compiles the model's forward, never the step). `step` keeps what the
peeled wrapper did in eager mode: gradients off, unless the optimiser is `differentiable`.

Checked on torch 2.14.1. On a torch whose wrappers leave no `__wrapped__`, `inspect.unwrap` returns
them as they are: the numbers stay torch's, only the import comes back. tests/test_optim.py fails
if torch._dynamo comes back into a run or if a step differs from torch.optim's by one bit.
"""

from __future__ import annotations

import inspect

import torch


def _eager(method):
    """`method` without torch's torch.compile-only wrappers (the innermost function functools.wraps names)."""
    return inspect.unwrap(method)


def _eager_optimizer(base: type[torch.optim.Optimizer]) -> type[torch.optim.Optimizer]:
    raw_step = _eager(base.step)

    def step(self, closure=None):
        with torch.set_grad_enabled(self.defaults.get("differentiable", False)):
            return raw_step(self, closure)

    namespace = {
        "__doc__": f"torch.optim.{base.__name__}, called without importing torch._dynamo (engine/optim.py).",
        "__module__": __name__,
        "step": step,
        "add_param_group": _eager(base.add_param_group),
        "zero_grad": _eager(base.zero_grad),
        "state_dict": _eager(base.state_dict),
        "load_state_dict": _eager(base.load_state_dict),
    }
    return type(base.__name__, (base,), namespace)


SGD = _eager_optimizer(torch.optim.SGD)
Adam = _eager_optimizer(torch.optim.Adam)
