"""Fast inference for sampling conv nets: the same f(u) = L(θ* + D u) (SPEC §1), fewer passes over memory.

Sampling evaluates one network at hundreds of weight vectors, each on the whole evaluation subset, with no
gradients. :class:`InferenceGraph` traces the model once (``torch.fx``) and rewrites every 2-D convolution into one
call that

- runs on channels-last weights and activations (oneDNN's fast layout for small channel counts);
- folds an eval-mode BatchNorm that directly follows it into its weights and bias
  (w' = w·γ/√(σ²+ε), b' = (b − μ)·γ/√(σ²+ε) + β: exact algebra, float rounding only);
- fuses a following ReLU, and a following residual addition (+ ReLU), into the convolution's oneDNN post-ops
  (``torch.ops.mkldnn._convolution_pointwise``; where that operator is missing, or off float32 CPU tensors,
  the same graph runs with ``F.conv2d`` and separate ops).

Non-overlapping 2-D max pooling (kernel = stride, no padding or dilation) becomes the elementwise maximum of its
kernel's strided slices: the same values bitwise (a maximum does not round), 4-11× faster than
``max_pool2d_with_indices`` on CPU at the channel counts of small conv nets.

The folded weights are recomputed from the model's own parameters by :meth:`InferenceGraph.refresh` after every
change of θ (the sampler calls it once per sample), so the model is never modified. The rewritten graph is checked
against the model's own forward pass on a few inputs when it is built; a mismatch, or a model that ``torch.fx``
cannot trace, gives ``None`` from :func:`try_inference_graph` and the sampler runs the model as it is.
Measured in ``benchmarks/conv_sampling.py``. Not used instead: ``torch.compile`` (26 s to compile ResNet-20 on
2 cores, and its output stayed that of the old weights after an in-place parameter update in torch 2.14) and
TorchScript's ``optimize_for_inference`` (deprecated; it freezes the weights, 0.16 s per sample to redo).
"""

from __future__ import annotations

import inspect
import operator
from dataclasses import dataclass

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp
from torch.nn import functional as F

_RELU_FUNCTIONS = {F.relu, torch.relu, torch.relu_}
_ADD_FUNCTIONS = {operator.add, operator.iadd, torch.add}
CHECK_RTOL = 1e-4  # the rewritten graph against the model's forward pass, relative to the outputs' scale


def _pointwise_available() -> bool:
    ops = getattr(torch.ops, "mkldnn", None)
    try:
        return torch.backends.mkldnn.is_available() and hasattr(ops, "_convolution_pointwise")
    except (AttributeError, RuntimeError):
        return False


@dataclass
class FusedConv:
    """One convolution of the graph with what was folded and fused into it; ``weight``/``bias`` are the current
    channels-last, BatchNorm-folded values (set by :meth:`refresh`)."""

    conv: nn.Conv2d
    bn: nn.BatchNorm2d | None = None
    relu: bool = False
    residual: bool = False
    weight: torch.Tensor | None = None
    bias: torch.Tensor | None = None
    own_forward: bool = False  # call the layer itself (its forward may be replaced: the sampler's first layer)

    def refresh(self) -> None:
        if self.own_forward:
            return
        w = self.conv.weight.detach()
        b = None if self.conv.bias is None else self.conv.bias.detach()
        if self.bn is not None:
            bn = self.bn
            scale = torch.rsqrt(bn.running_var.double() + bn.eps)
            if bn.weight is not None:
                scale = scale * bn.weight.detach().double()
            shift = -bn.running_mean.double() * scale
            if b is not None:
                shift = shift + b.double() * scale
            if bn.bias is not None:
                shift = shift + bn.bias.detach().double()
            w = (w.double() * scale.view(-1, 1, 1, 1)).to(w.dtype)
            b = shift.to(w.dtype)
        self.weight = w.contiguous(memory_format=torch.channels_last)
        self.bias = b

    def __call__(self, x: torch.Tensor, other: torch.Tensor | None = None) -> torch.Tensor:
        c = self.conv
        if self.own_forward:
            out = c(x)
            out = out if other is None else out + other
            return F.relu(out) if self.relu else out
        x = x.contiguous(memory_format=torch.channels_last)
        if _use_pointwise(x, self.weight):
            args = (list(c.padding), list(c.stride), list(c.dilation), c.groups)
            conv = torch.ops.mkldnn._convolution_pointwise
            if other is None:
                return conv(x, self.weight, self.bias, *args, "relu" if self.relu else "none", [], "")
            other = other.contiguous(memory_format=torch.channels_last)
            unary = "relu" if self.relu else None
            return conv.binary(x, other, self.weight, self.bias, *args, "add", None, unary, [], "")
        out = F.conv2d(x, self.weight, self.bias, c.stride, c.padding, c.dilation, c.groups)
        if other is not None:
            out = out + other
        return F.relu(out) if self.relu else out


def _use_pointwise(x: torch.Tensor, w: torch.Tensor) -> bool:
    return _POINTWISE and x.device.type == "cpu" and x.dtype == torch.float32 and w.dtype == torch.float32


_POINTWISE = _pointwise_available()


def _pair(v: int | tuple[int, ...]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def slice_max_pool(x: torch.Tensor, kernel: tuple[int, int]) -> torch.Tensor:
    """``F.max_pool2d(x, kernel)`` with stride = kernel and no padding, as the maximum of the kernel's strided
    slices (the same values: the output keeps the input's memory format)."""
    kh, kw = kernel
    h, w = x.shape[-2] // kh * kh, x.shape[-1] // kw * kw
    out = None
    for i in range(kh):
        for j in range(kw):
            part = x[..., i:h:kh, j:w:kw]
            out = part if out is None else torch.maximum(out, part)
    return out


_MAX_POOL_SIGNATURE = inspect.signature(
    lambda input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False: None
)


def _plain_max_pool(node: fx.Node, modules: dict[str, nn.Module]) -> tuple[int, int] | None:
    """The kernel of a non-overlapping, unpadded 2-D max pooling node (nn.MaxPool2d or F.max_pool2d), else None."""
    if node.op == "call_module" and type(modules.get(str(node.target))) is nn.MaxPool2d:
        m = modules[str(node.target)]
        opts = {"kernel_size": m.kernel_size, "stride": m.stride, "padding": m.padding, "dilation": m.dilation,
                "ceil_mode": m.ceil_mode, "return_indices": m.return_indices}  # fmt: skip
    elif node.op == "call_function" and node.target is F.max_pool2d:
        try:
            bound = _MAX_POOL_SIGNATURE.bind(*node.args, **node.kwargs)
        except TypeError:
            return None
        bound.apply_defaults()
        opts = dict(bound.arguments)
    else:
        return None
    values = [opts[k] for k in ("kernel_size", "stride", "padding", "dilation")]
    if any(isinstance(v, fx.Node) for v in values) or opts["ceil_mode"] is not False or opts["return_indices"]:
        return None
    kernel = _pair(opts["kernel_size"])
    stride = kernel if opts["stride"] in (None, (), []) else _pair(opts["stride"])
    if stride != kernel or _pair(opts["padding"]) != (0, 0) or _pair(opts["dilation"]) != (1, 1):
        return None
    return kernel


def _is_relu(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    if node.op == "call_function":
        return node.target in _RELU_FUNCTIONS
    if node.op == "call_method":
        return node.target in ("relu", "relu_")
    return node.op == "call_module" and type(modules.get(str(node.target))) is nn.ReLU


def _is_add(node: fx.Node) -> bool:
    if node.op == "call_function":
        return node.target in _ADD_FUNCTIONS and len(node.args) == 2 and not node.kwargs
    return node.op == "call_method" and node.target in ("add", "add_") and len(node.args) == 2 and not node.kwargs


def _only_user(node: fx.Node) -> fx.Node | None:
    users = list(node.users)
    return users[0] if len(users) == 1 else None


def _shape(node: fx.Node) -> torch.Size | None:
    meta = node.meta.get("tensor_meta")
    return getattr(meta, "shape", None)


class InferenceGraph:
    """The model's forward pass with fused, channels-last convolutions (see the module docstring).

    Call :meth:`refresh` after every change of the model's parameters; ``fused`` counts what was folded.
    Build it with the model in eval mode and call it only in eval mode (BatchNorm is folded with running
    statistics)."""

    def __init__(self, model: nn.Module, example: torch.Tensor):
        gm = fx.symbolic_trace(model)
        ShapeProp(gm).propagate(example)
        modules = dict(gm.named_modules())
        self.convs: list[FusedConv] = []
        self.fused = {"conv": 0, "batchnorm": 0, "relu": 0, "residual": 0, "max_pool": 0}
        graph = gm.graph
        for node in list(graph.nodes):
            kernel = _plain_max_pool(node, modules)
            if kernel is not None and node.args and isinstance(node.args[0], fx.Node):
                with graph.inserting_after(node):
                    new = graph.call_function(slice_max_pool, (node.args[0], kernel))
                node.replace_all_uses_with(new)
                graph.erase_node(node)
                self.fused["max_pool"] += 1
                continue
            if node.op != "call_module" or type(modules[node.target]) is not nn.Conv2d:
                continue
            conv = modules[node.target]
            if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
                continue
            chain: list[fx.Node] = [node]
            spec, other = FusedConv(conv), None
            nxt = _only_user(chain[-1])
            if nxt is not None and nxt.op == "call_module" and type(modules.get(nxt.target)) is nn.BatchNorm2d:
                bn = modules[nxt.target]
                if not bn.training and bn.running_mean is not None and nxt.args[0] is chain[-1] and not nxt.kwargs:
                    spec.bn = bn
                    chain.append(nxt)
            nxt = _only_user(chain[-1])
            if nxt is not None and _is_add(nxt):
                a, b = nxt.args
                cand = b if a is chain[-1] else a
                shape = _shape(cand) if isinstance(cand, fx.Node) else None
                if (
                    isinstance(cand, fx.Node)
                    and cand is not chain[-1]
                    and (a is chain[-1] or b is chain[-1])
                    and shape is not None
                    and shape == _shape(chain[-1])
                ):
                    spec.residual, other = True, cand
                    chain.append(nxt)
            nxt = _only_user(chain[-1])
            if nxt is not None and _is_relu(nxt, modules) and nxt.args and nxt.args[0] is chain[-1]:
                spec.relu = True
                chain.append(nxt)
            name = f"_fused_conv_{len(self.convs)}"
            setattr(gm, name, _Call(spec))
            with graph.inserting_after(chain[-1]):
                new = graph.call_module(name, (node.args[0],) + ((other,) if other is not None else ()))
            chain[-1].replace_all_uses_with(new)
            for old in reversed(chain):
                graph.erase_node(old)
            self.convs.append(spec)
            self.fused["conv"] += 1
            self.fused["batchnorm"] += spec.bn is not None
            self.fused["relu"] += spec.relu
            self.fused["residual"] += spec.residual
        graph.lint()
        gm.recompile()
        self.module = gm
        self.pointwise = _POINTWISE
        self.refresh()

    def refresh(self) -> None:
        """Recompute every convolution's folded, channels-last weights from the model's current parameters."""
        with torch.no_grad():
            for spec in self.convs:
                spec.refresh()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)

    def folds_batchnorm_after(self, conv: nn.Module) -> bool:
        """Whether ``conv`` runs with the BatchNorm after it folded in (then the sampler's first-layer terms would
        cost more than they save: ResNet-20 sampled 0.86× as fast with them on MNIST, 0.74× on CIFAR shapes)."""
        return any(spec.conv is conv and spec.bn is not None for spec in self.convs)

    def hand_back(self, conv: nn.Module) -> None:
        """Let ``conv`` run its own forward again (the sampler replaces the first layer's with precomputed terms);
        the ReLU or addition fused after it runs as a separate op. Not for a conv with a folded BatchNorm."""
        for spec in self.convs:
            if spec.conv is conv and not spec.own_forward:
                if spec.bn is not None:
                    raise ValueError("a convolution with a folded BatchNorm cannot run its own forward")
                spec.own_forward, spec.weight, spec.bias = True, None, None
                self.fused["conv"] -= 1
                self.fused["relu"] -= spec.relu
                self.fused["residual"] -= spec.residual

    def describe(self) -> dict:
        return {**self.fused, "oneDNN post-ops": self.pointwise}


class _Call(nn.Module):
    """A graph node's module: calls its :class:`FusedConv` (a module so that fx code generation can name it)."""

    def __init__(self, spec: FusedConv):
        super().__init__()
        self.spec = spec

    def forward(self, x: torch.Tensor, other: torch.Tensor | None = None) -> torch.Tensor:
        return self.spec(x, other)


def try_inference_graph(model: nn.Module, example: torch.Tensor) -> tuple[InferenceGraph | None, str]:
    """An :class:`InferenceGraph` of ``model`` (in eval mode, no gradients) checked against the model's own output on
    ``example`` to :data:`CHECK_RTOL` of the outputs' scale, or ``(None, reason)`` where it does not apply."""
    if not any(type(m) is nn.Conv2d for m in model.modules()):
        return None, "no 2-D convolution"
    try:
        with torch.no_grad():
            graph = InferenceGraph(model, example)
            if graph.fused["conv"] + graph.fused["max_pool"] == 0:
                return None, "nothing to rewrite"
            ref, got = model(example), graph(example)
    except Exception as err:  # any tracing or operator failure: run the model as it is
        return None, f"not traceable ({type(err).__name__})"
    if not isinstance(ref, torch.Tensor) or ref.shape != got.shape:
        return None, "output differs in type or shape"
    if not bool(torch.isfinite(ref).all()):
        return None, "non-finite output at the trained point"
    scale = float(ref.abs().max()) or 1.0
    if float((got - ref).abs().max()) > CHECK_RTOL * scale:
        return None, "rewritten graph differs from the model"
    return graph, "fused"
