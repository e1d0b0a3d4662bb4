"""J·u without a second forward: forward-mode differentiation over a recorded forward pass.

The meta-gradient needs J·u, the Jacobian of the training logits w.r.t. θ applied to a vector u
(docs/algorithm.md §4). `torch.func.jvp` computes the primal and the tangent
together, so it repeats the training forward the method has just done: on ResNet-32 that is a
third of its convolutions. Here the training forward runs through the model's torch.fx graph
and keeps the intermediate values the tangent rules read; `RecordedForward.jvp(u)` then walks
the same graph and computes only tangents. The layers that cost have hand-written rules (convolution and linear:
two products instead of three; train-mode BatchNorm as two of its own fused kernels; ReLU as
a mask); any other node gets `torch.func.jvp` on that single op. Same numbers as `torch.func.jvp`
over the whole model, up to floating-point summation order (tested in float64).

Models that torch.fx cannot trace (data-dependent control flow, several inputs, in-place ops,
shared parameters) get no recording; callers then fall back to `torch.func.jvp`.
"""

from __future__ import annotations

import operator
import weakref
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.func import functional_call, jvp

Tangent = torch.Tensor | None

# Graphs are traced once per model object; None marks a model that cannot be recorded.
_GRAPHS: "weakref.WeakKeyDictionary[nn.Module, _TracedGraph | None]" = weakref.WeakKeyDictionary()


def record_forward(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, "RecordedForward | None"]:
    """`model(x)` (same ops, same autograd graph) and, where the model can be traced, its recording."""
    if model not in _GRAPHS:
        _GRAPHS[model] = _TracedGraph.trace(model)
    traced = _GRAPHS[model]
    if traced is None:
        return model(x), None
    recorded = RecordedForward(model, traced, x)
    return recorded.output, recorded


def _rule(node: fx.Node, module: nn.Module | None) -> str:
    """Which tangent rule a node gets: conv, linear, batch_norm, relu, add, or generic (torch.func.jvp)."""
    if type(module) is nn.Conv2d and module.padding_mode == "zeros":
        return "conv"
    if type(module) is nn.Linear:
        return "linear"
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and (module.training or module.running_mean is None):
        return "batch_norm"
    is_relu = type(module) is nn.ReLU or (node.op == "call_function" and node.target in (F.relu, torch.relu))
    if is_relu and len(node.all_input_nodes) == 1:
        return "relu"
    if node.op == "call_function" and node.target in (operator.add, torch.add) and not node.kwargs:
        return "add"
    return "generic"


class _TracedGraph:
    """A model's fx graph, with which recorded values the tangent pass reads and when others can go."""

    def __init__(self, model: nn.Module, graph: fx.Graph):
        self.graph = graph
        modules = {n: model.get_submodule(str(n.target)) for n in graph.nodes if n.op == "call_module"}
        # Values the tangent rules read: a layer's input (conv, linear, BatchNorm), a ReLU's
        # output (its mask), every input of a generic node. The rest is freed during the forward.
        self.kept: set[fx.Node] = set()
        for node in graph.nodes:
            rule = _rule(node, modules.get(node))
            if rule in ("conv", "linear", "batch_norm"):
                self.kept.add(node.all_input_nodes[0])
            elif rule == "relu":
                self.kept.add(node)
            elif rule == "generic" or node.op == "output":
                self.kept.update(node.all_input_nodes)
        # For each node, the inputs whose last use it is.
        self.last_uses: dict[fx.Node, list[fx.Node]] = {n: [] for n in graph.nodes}
        seen: set[fx.Node] = set()
        for node in reversed(graph.nodes):
            for inp in node.all_input_nodes:
                if inp not in seen:
                    seen.add(inp)
                    self.last_uses[node].append(inp)

    @classmethod
    def trace(cls, model: nn.Module) -> "_TracedGraph | None":
        all_params = list(model.named_parameters(remove_duplicate=False))
        if len({id(p) for _, p in all_params}) != len(all_params):
            return None  # a shared parameter would get one tangent under two names
        try:
            graph = fx.symbolic_trace(model).graph
        except Exception:  # noqa: BLE001 — any tracing failure just means "use torch.func.jvp"
            return None
        if sum(1 for n in graph.nodes if n.op == "placeholder") != 1:
            return None
        if not all(isinstance(n.args[0], fx.Node) for n in graph.nodes if n.op == "output"):
            return None  # one tensor out, not a tuple or dict
        for node in graph.nodes:
            # An in-place op would overwrite a recorded value that a later tangent rule reads.
            name = str(node.target) if node.op == "call_method" else getattr(node.target, "__name__", "")
            if node.kwargs.get("inplace") or name.endswith("_") or node.target is operator.setitem:
                return None
            if node.op == "call_module" and getattr(model.get_submodule(str(node.target)), "inplace", False):
                return None
        return cls(model, graph)


class RecordedForward:
    """One forward of `model` on `x` through its fx graph, keeping the values the tangent pass reads."""

    def __init__(self, model: nn.Module, traced: _TracedGraph, x: torch.Tensor):
        self.model, self.traced = model, traced
        self.values: dict[fx.Node, Any] = {}
        # Per node: a floating-point tensor's shape (it can carry a tangent), else None.
        self.shapes: dict[fx.Node, torch.Size | None] = {}
        for node in traced.graph.nodes:
            if node.op == "output":
                self.output = fx.node.map_arg(node.args[0], self.values.__getitem__)
                break
            value = x if node.op == "placeholder" else self._run(node)
            self.values[node] = value
            self.shapes[node] = value.shape if isinstance(value, torch.Tensor) and value.is_floating_point() else None
            for inp in traced.last_uses[node]:
                if inp not in traced.kept:
                    del self.values[inp]

    def _run(self, node: fx.Node) -> Any:
        if node.op == "get_attr":
            return _get_attr(self.model, str(node.target))
        args = fx.node.map_arg(node.args, self.values.__getitem__)
        kwargs = fx.node.map_arg(node.kwargs, self.values.__getitem__)
        if node.op == "call_module":
            return self.model.get_submodule(str(node.target))(*args, **kwargs)
        return _call(node, args, kwargs)

    # -- the tangent pass ------------------------------------------------------------------------

    def jvp(self, param_tangents: dict[str, torch.Tensor]) -> torch.Tensor:
        """J·u: the tangent of the recorded output when θ moves along `param_tangents` (by name).

        Parameters without an entry are held fixed; the input has no tangent.
        """
        with torch.no_grad():  # the recorded values carry the forward's graph; tangents need none
            return self._tangent_pass(param_tangents)

    def _tangent_pass(self, param_tangents: dict[str, torch.Tensor]) -> torch.Tensor:
        tangents: dict[fx.Node, Tangent] = {}
        for node in self.traced.graph.nodes:
            if node.op == "output":
                out = tangents[node.args[0]]
                return out if out is not None else torch.zeros_like(self.output)
            if self.shapes[node] is None or node.op == "placeholder":
                tangents[node] = None
            elif node.op == "get_attr":
                tangents[node] = param_tangents.get(str(node.target))
            else:
                tangents[node] = self._tangent(node, tangents, param_tangents)
        raise AssertionError("an fx graph always ends with an output node")

    def _tangent(self, node: fx.Node, tangents: dict[fx.Node, Tangent], param_tangents: dict) -> Tangent:
        inputs = node.all_input_nodes
        module = self.model.get_submodule(str(node.target)) if node.op == "call_module" else None
        module_tangents = {}
        if module is not None:
            prefix = f"{node.target}."
            module_tangents = {n: param_tangents[prefix + n] for n, _ in module.named_parameters()
                               if prefix + n in param_tangents}
        if all(tangents[n] is None for n in inputs) and not module_tangents:
            return None  # nothing upstream moves: this value is a constant

        rule = _rule(node, module)
        t_in = tangents[inputs[0]] if inputs else None
        if rule == "conv":
            return _conv2d_tangent(module, self.values[inputs[0]], t_in, module_tangents, self.shapes[node])
        if rule == "linear":
            return _linear_tangent(module, self.values[inputs[0]], t_in, module_tangents, self.shapes[node])
        if rule == "batch_norm":
            return _batch_norm_tangent(module, self.values[inputs[0]], t_in, module_tangents)
        if rule == "relu":
            return torch.ops.aten.threshold_backward(t_in, self.values[node], 0) if t_in is not None else None
        if rule == "add":  # linear: the sum of the moving inputs' tangents, broadcast like the sum
            ts = [tangents[n] for n in inputs if tangents[n] is not None]
            total = sum(ts[1:], ts[0])
            return total if total.shape == self.shapes[node] else total.expand(self.shapes[node])
        return self._jvp_of_node(node, module, tangents, module_tangents)

    def _jvp_of_node(self, node: fx.Node, module: nn.Module | None, tangents: dict, module_tangents: dict) -> Tangent:
        """Any other op: torch.func.jvp of that single op (it recomputes only this node's value)."""
        moving = [n for n in node.all_input_nodes if tangents[n] is not None]
        params = dict(module.named_parameters()) if module is not None else {}
        param_primals = {n: p.detach() for n, p in params.items()}
        param_dots = {n: module_tangents.get(n, torch.zeros_like(p)) for n, p in param_primals.items()}

        def op(moving_values: tuple, ps: dict):
            local = dict(zip(moving, moving_values))
            get = lambda n: local[n] if n in local else self.values[n]  # noqa: E731
            args = fx.node.map_arg(node.args, get)
            kwargs = fx.node.map_arg(node.kwargs, get)
            if module is not None:
                # Buffers are copied: a train-mode BatchNorm would otherwise update its statistics again.
                return functional_call(module, (ps, buffer_copies(module)), args, kwargs)
            return _call(node, args, kwargs)

        primals = tuple(self.values[n].detach() for n in moving)
        dots = tuple(tangents[n] for n in moving)
        _, t = jvp(op, (primals, param_primals), (dots, param_dots))
        return t


def buffer_copies(model: nn.Module) -> dict[str, torch.Tensor]:
    """Copies of a model's buffers, for a functional_call that must not touch its BN statistics."""
    return {n: b.clone() for n, b in model.named_buffers()}


def _call(node: fx.Node, args: tuple, kwargs: dict) -> Any:
    """Run a call_method or call_function node on the given arguments."""
    if node.op == "call_method":
        return getattr(args[0], str(node.target))(*args[1:], **kwargs)
    return node.target(*args, **kwargs)


def _get_attr(model: nn.Module, target: str) -> Any:
    obj: Any = model
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def _product_tangent(product, weight: torch.Tensor, x: torch.Tensor, t_x: Tangent, dots: dict,
                     shape: torch.Size, bias_shape: tuple) -> torch.Tensor:
    """d(x ∗ W + b) = ẋ ∗ W + x ∗ Ẇ + ḃ for a product ∗ linear in each factor (convolution, matmul):
    two products, where torch.func.jvp would also recompute the primal x ∗ W."""
    out = product(t_x, weight.detach()) if t_x is not None else None
    if "weight" in dots:
        term = product(x.detach(), dots["weight"])
        out = term if out is None else out.add_(term)
    if "bias" in dots:
        out = x.new_zeros(shape) if out is None else out
        out = out.add_(dots["bias"].view(bias_shape))
    return out


def _conv2d_tangent(layer: nn.Conv2d, x: torch.Tensor, t_x: Tangent, dots: dict, shape: torch.Size) -> torch.Tensor:
    def conv(inp, weight):
        return F.conv2d(inp, weight, None, layer.stride, layer.padding, layer.dilation, layer.groups)

    return _product_tangent(conv, layer.weight, x, t_x, dots, shape, (1, -1, 1, 1))


def _linear_tangent(layer: nn.Linear, x: torch.Tensor, t_x: Tangent, dots: dict, shape: torch.Size) -> torch.Tensor:
    return _product_tangent(F.linear, layer.weight, x, t_x, dots, shape, (-1,))


def _batch_norm_tangent(bn: nn.modules.batchnorm._BatchNorm, x: torch.Tensor, t_x: Tangent, dots: dict) -> torch.Tensor:
    """Train-mode BatchNorm y = γ·x̂ + β, x̂ = (x − μ)/σ over the batch. Differentiating μ and σ too:

        ẏ = γ̇·x̂ + β̇  +  (γ/σ)·(ẋ − mean(ẋ) − x̂·mean(ẋ·x̂))        (means per channel)

    The first part is BatchNorm's own forward with weight γ̇ and bias β̇; the second is exactly
    BatchNorm's backward formula for the input with ẋ as the incoming gradient. So two fused
    kernels, where the generic forward-mode rule takes about seventeen element-wise passes.
    """
    x = x.detach()
    zeros = x.new_zeros(x.shape[1])
    weight_dot, bias_dot = dots.get("weight", zeros), dots.get("bias", zeros)
    out, mean, inv_std = torch.native_batch_norm(x, weight_dot, bias_dot, None, None, True, 0.0, bn.eps)
    if t_x is not None:
        gamma = bn.weight.detach() if bn.weight is not None else None
        moved = torch.ops.aten.native_batch_norm_backward(
            t_x, x, gamma, None, None, mean, inv_std, True, bn.eps, [True, False, False])[0]
        out = out.add_(moved)
    return out
