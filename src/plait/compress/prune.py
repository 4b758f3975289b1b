"""Pruning of BERT-style encoders: magnitude (unstructured) and structured (attention heads, feed-forward
neurons).

Magnitude pruning zeroes the smallest weights of every Linear layer of the encoder (``torch.nn.utils.prune``,
L1 per layer); the matrices keep their shape, so the model is no smaller or faster on its own: it is the
quality cost of sparsity, measured. Structured pruning removes whole heads or neurons: the matrices shrink,
so the model is smaller and faster. Importance is the L1 mass of a unit's weights (a head's slices of the
query, key, value and output projections; a neuron's row in and column out), which needs no data; the
least important ``amount`` of units goes from every layer, keeping at least one.
"""

from __future__ import annotations

from typing import Any

from plait.errors import CapabilityError, InputError


def check_amount(amount: float) -> float:
    if not 0.0 < amount < 1.0:
        raise InputError(f"a pruning amount is a fraction between 0 and 1 (e.g. 0.3), not {amount}")
    return amount


def base_encoder(model: Any) -> Any:
    """The transformers encoder inside ``model`` (a bare encoder, or an encoder with a head)."""
    return model.encoder if hasattr(model, "head") else model


def layers(model: Any) -> Any:
    base = base_encoder(model)
    stack = getattr(getattr(base, "encoder", None), "layer", None)
    if stack is None:
        raise CapabilityError(f"pruning and layer dropping support BERT-style encoders; this model is "
                              f"{type(base).__name__}")
    return stack


def magnitude_prune(model: Any, amount: float) -> float:
    """Zero the ``amount`` smallest-magnitude weights of each encoder Linear layer; returns the sparsity
    of those layers afterwards."""
    import torch
    from torch.nn.utils import prune

    check_amount(amount)
    zeros = total = 0
    for layer in layers(model):
        for module in layer.modules():
            if isinstance(module, torch.nn.Linear):
                prune.l1_unstructured(module, name="weight", amount=amount)
                prune.remove(module, "weight")  # bake the mask into the weights
                zeros += int((module.weight == 0).sum())
                total += module.weight.numel()
    return zeros / max(total, 1)


def _keep(scores: Any, amount: float) -> Any:
    import torch

    n = scores.numel()
    keep = max(1, n - round(amount * n))
    return torch.sort(torch.topk(scores, keep).indices).values


def _shrink(linear: Any, index: Any, dim: int) -> Any:
    """A new Linear keeping ``index`` along ``dim`` of the weight (0: outputs, 1: inputs)."""
    import torch

    weight = linear.weight.detach().index_select(dim, index).clone()
    out_features, in_features = weight.shape
    new = torch.nn.Linear(in_features, out_features, bias=linear.bias is not None)
    new.weight.data.copy_(weight)
    if linear.bias is not None:
        new.bias.data.copy_(linear.bias.detach() if dim == 1 else linear.bias.detach()[index])
    return new


def prune_heads(model: Any, amount: float) -> dict[int, int]:
    """Remove the least important ``amount`` of attention heads in every layer; returns heads kept per layer."""
    import torch

    check_amount(amount)
    base = base_encoder(model)
    head_size = int(base.config.hidden_size // base.config.num_attention_heads)
    kept: dict[int, int] = {}
    for i, layer in enumerate(layers(model)):
        attention, out = layer.attention.self, layer.attention.output.dense
        n_heads = attention.query.out_features // head_size
        with torch.no_grad():
            rows = sum(m.weight.abs().sum(dim=1) for m in (attention.query, attention.key, attention.value))
            mass = rows + out.weight.abs().sum(dim=0)  # (heads * head_size,)
            scores = mass.view(n_heads, head_size).sum(dim=1)
        heads = _keep(scores, amount)
        index = (heads[:, None] * head_size + torch.arange(head_size)[None, :]).reshape(-1)
        attention.query = _shrink(attention.query, index, 0)
        attention.key = _shrink(attention.key, index, 0)
        attention.value = _shrink(attention.value, index, 0)
        layer.attention.output.dense = _shrink(out, index, 1)
        # Informational only: the attention forward infers the head count from the projections' size.
        attention.num_attention_heads = len(heads)
        attention.all_head_size = len(heads) * head_size
        kept[i] = len(heads)
    return kept


def prune_neurons(model: Any, amount: float) -> dict[int, int]:
    """Remove the least important ``amount`` of feed-forward neurons in every layer; returns neurons kept."""
    import torch

    check_amount(amount)
    kept: dict[int, int] = {}
    for i, layer in enumerate(layers(model)):
        inner, outer = layer.intermediate.dense, layer.output.dense
        with torch.no_grad():
            scores = inner.weight.abs().sum(dim=1) * outer.weight.abs().sum(dim=0)
        index = _keep(scores, amount)
        layer.intermediate.dense = _shrink(inner, index, 0)
        layer.output.dense = _shrink(outer, index, 1)
        kept[i] = int(index.numel())
    return kept


def drop_layers(model: Any, keep: int) -> list[int]:
    """Keep ``keep`` layers spread evenly from the first to the last (the last layer's output is what the
    pooling and head were trained on); returns the indices kept."""
    import torch

    stack = layers(model)
    n = len(stack)
    if not 1 <= keep < n:
        raise InputError(f"the model has {n} layers: keep between 1 and {n - 1}")
    indices = sorted({round(i * (n - 1) / (keep - 1)) for i in range(keep)}) if keep > 1 else [n - 1]
    base = base_encoder(model)
    base.encoder.layer = torch.nn.ModuleList([stack[i] for i in indices])
    base.config.num_hidden_layers = len(indices)
    for j, layer in enumerate(base.encoder.layer):  # layer indices feed caches and attention bookkeeping
        for module in layer.modules():
            if hasattr(module, "layer_idx"):
                module.layer_idx = j
    return indices
