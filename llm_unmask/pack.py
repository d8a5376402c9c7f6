"""LoRA packs: K runs of a sweep trained together over one frozen base, as one batched model.

The runs of a pack differ only in seed (data order, initial adapters and head) and unmask configuration. They
share the frozen base weights, loaded once (4-bit or not: the base matmul stays shared). Each run keeps its own
LoRA A/B (stacked along a leading run dimension, applied per row with batched matmuls), its own head, its own
slice of the optimizer state and its own gradient clipping. A packed step stacks the runs' batches as rows; a
row's run index picks its adapters and head, and its run's unmask flags pick each layer's mask
(:func:`llm_unmask.unmask.apply_row_unmask`). Nothing is summed across runs except the scalar the backward starts
from (a sum of per-run losses, whose gradient w.r.t. one run's weights is that run's own gradient).

Initial adapters and head come from peft itself, run by run, seeded as a solo run seeds them. After training the
pack evaluates all its runs in packed forwards through ``predict_tags`` (:func:`llm_unmask.packrun.predict_pack`),
and each run's weights go back into an ordinary peft model of that run, saved through the very code a solo run
uses (:func:`llm_unmask.pipeline.finish_run`), so ``predict``, ``report`` and resume cannot tell a packed run
from a solo one.

Dropout: with dropout off a packed run equals its solo run within fp32 tolerance (tests/test_pack.py). With
dropout on (LoRA dropout, head dropout) the runs draw their dropout masks from the pack's one random stream
instead of their own seeded streams, so a packed run is a different draw of the same training procedure, not a
replay of the solo run.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers.utils import ModelOutput

from .align import IGNORE
from .train import PACKED
from .unmask import FLAGS_KWARG, apply_row_unmask, remove_unmask, unmask_flags

log = logging.getLogger(__name__)
# CPU SDPA has no vmap batching rule and falls back to a per-model loop (correct, just not faster); say it once
# in the docs (docs/results.md, "Packs") rather than once per packed step.
warnings.filterwarnings("ignore", message="There is a performance drop because we have not yet implemented the "
                                          "batching rule for aten::_scaled_dot_product")


def _stacked(tensors: Sequence[torch.Tensor]) -> nn.Parameter:
    p = nn.Parameter(torch.stack([t.detach().float() for t in tensors]).contiguous())
    setattr(p, PACKED, 1)
    return p


class _Rows:
    """What every packed layer of one forward needs: which run each row belongs to, and whether the rows are
    K equal blocks in run order (the usual packed step), where one batched matmul per layer needs no gather."""

    run_index: torch.Tensor | None = None
    uniform: bool = False


class PackedLoraLinear(nn.Module):
    """``base(x) + scaling * B_k A_k dropout(x)`` with k the row's run; the base layer is shared and frozen."""

    def __init__(self, base: nn.Module, a: Sequence[torch.Tensor], b: Sequence[torch.Tensor], scaling: float,
                 dropout: float, rows: _Rows):
        super().__init__()
        self.base, self.scaling, self.rows = base, scaling, rows
        self.lora_A, self.lora_B = _stacked(a), _stacked(b)  # (K, r, in), (K, out, r)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        h = self.dropout(x.to(self.lora_A.dtype))
        if self.rows.uniform:  # (K, rows of a run x tokens, features): one bmm per factor
            shape = h.shape
            h = h.reshape(self.lora_A.shape[0], -1, shape[-1])
            h = torch.bmm(torch.bmm(h, self.lora_A.transpose(1, 2)), self.lora_B.transpose(1, 2))
            h = h.reshape(*shape[:-1], -1)
        else:  # runs with different row counts: gather each row's adapters
            idx = self.rows.run_index
            h = torch.einsum("n...i,nri->n...r", h, self.lora_A[idx])
            h = torch.einsum("n...r,nor->n...o", h, self.lora_B[idx])
        return out + (h * self.scaling).to(out.dtype)


class PackedHead(nn.Module):
    """The token-classification linear layer, one per run."""

    def __init__(self, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor] | None, rows: _Rows):
        super().__init__()
        self.rows = rows
        self.weight = _stacked(weights)  # (K, labels, hidden)
        self.bias = _stacked(biases) if biases is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        idx, x = self.rows.run_index, x.to(self.weight.dtype)
        if self.rows.uniform:
            k, shape = self.weight.shape[0], x.shape
            out = torch.bmm(x.reshape(k, -1, shape[-1]), self.weight.transpose(1, 2))
            if self.bias is not None:
                out = out + self.bias[:, None, :]
            return out.reshape(*shape[:-1], -1)
        out = torch.einsum("n...h,nch->n...c", x, self.weight[idx])
        if self.bias is not None:
            out = out + self.bias[idx].view(idx.shape[0], *([1] * (out.dim() - 2)), -1)
        return out


@dataclass
class PackOutput(ModelOutput):
    loss: torch.Tensor | None = None
    run_losses: torch.Tensor | None = None
    logits: torch.Tensor | None = None


def _set(root: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, child, module)


class LoraPack(nn.Module):
    """K LoRA runs over one frozen base with a token-classification head (see the module docstring).

    ``inits[k]`` is run k's peft model state as :func:`peft_weights` reads it; ``specs[k]`` its unmask spec.
    ``forward(input_ids, attention_mask, labels, run_index)`` returns the sum of per-run mean losses (``loss``)
    and the per-run losses (``run_losses``).
    """

    def __init__(self, base: nn.Module, head: str, inits: Sequence[dict], specs: Sequence, num_layers: int,
                 is_decoder: bool = True):
        super().__init__()
        self.base, self.head, self.k = base, head, len(inits)
        self.rows = _Rows()
        for p in base.parameters():
            p.requires_grad_(False)
        first = inits[0]
        self.targets = sorted(first["lora"])
        for name in self.targets:
            original = base.get_submodule(name)
            _set(base, name, PackedLoraLinear(
                original, [i["lora"][name][0] for i in inits], [i["lora"][name][1] for i in inits],
                first["scaling"], first["dropout"], self.rows))
        self._original_head = getattr(base, head)
        setattr(base, head, PackedHead([i["head"][0] for i in inits],
                                       None if first["head"][1] is None else [i["head"][1] for i in inits],
                                       self.rows))
        self.register_buffer("flags", unmask_flags(specs, num_layers), persistent=False)
        self.is_decoder = is_decoder
        if is_decoder:
            apply_row_unmask(base)

    def forward(self, input_ids, attention_mask, run_index, labels=None, **kw) -> PackOutput:
        # kept after the forward: gradient checkpointing recomputes the layers during the backward
        self.rows.run_index = run_index
        n = run_index.shape[0]
        self.rows.uniform = n % self.k == 0 and torch.equal(
            run_index, torch.arange(self.k, device=run_index.device).repeat_interleave(n // self.k))
        if self.is_decoder:
            kw[FLAGS_KWARG] = self.flags[run_index]
        logits = self.base(input_ids=input_ids, attention_mask=attention_mask, **kw).logits
        if labels is None:
            return PackOutput(logits=logits)
        tok = F.cross_entropy(logits.float().transpose(1, 2), labels, ignore_index=IGNORE, reduction="none")
        per_row = tok.sum(1)
        counts = (labels != IGNORE).sum(1).to(per_row.dtype)
        sums = per_row.new_zeros(self.k).index_add(0, run_index, per_row)
        n = counts.new_zeros(self.k).index_add(0, run_index, counts)
        run_losses = sums / n.clamp(min=1)
        return PackOutput(loss=run_losses.sum(), run_losses=run_losses, logits=logits)

    def stacked_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def clip_grad_norm_(self, max_norm: float) -> torch.Tensor:
        return clip_per_run(self.stacked_parameters(), max_norm, self.k)

    def run_weights(self, k: int) -> dict:
        """Run k's trained weights, in the form :func:`peft_weights` reads and :func:`load_peft_weights` writes."""
        lora = {}
        for name in self.targets:
            mod = self.base.get_submodule(name)
            lora[name] = (mod.lora_A[k].detach(), mod.lora_B[k].detach())
        head = getattr(self.base, self.head)
        return {"lora": lora, "head": (head.weight[k].detach(), None if head.bias is None else head.bias[k].detach())}

    def unpack(self) -> nn.Module:
        """Put the base's own layers back (no hooks, no packed modules) and return it."""
        remove_unmask(self.base)
        for name in self.targets:
            _set(self.base, name, self.base.get_submodule(name).base)
        setattr(self.base, self.head, self._original_head)
        return self.base


@torch.no_grad()
def clip_per_run(params: Sequence[torch.Tensor], max_norm: float, k: int) -> torch.Tensor:
    """Per-run clipping of stacked parameters: each run's gradient is scaled by its own norm, as torch's
    clip_grad_norm_ would do for that run alone (never one norm over the pack). Returns the K norms."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(k)
    norms = sum(g.float().pow(2).flatten(1).sum(1) for g in grads).sqrt()
    coef = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(coef.view(-1, *([1] * (g.dim() - 1))).to(g.dtype))
    return norms


class FullPack(nn.Module):
    """K same-shaped models fine-tuned in full, as one: their parameters stacked (``torch.func``'s
    ``stack_module_state``) and run with ``functional_call`` under ``vmap`` over the models, the batch shared
    (the runs of a full pack have identical batches). Each model's unmask flags are one more vmapped input.

    ``forward(input_ids, attention_mask, labels)`` returns the sum of the models' losses (``loss``) and each
    model's loss (``run_losses``); under ``vmap`` dropout draws differ per model (``randomness="different"``).
    """

    def __init__(self, models: Sequence[nn.Module], specs: Sequence, num_layers: int, is_decoder: bool = True):
        super().__init__()
        import copy

        from torch.func import stack_module_state

        self.k = len(models)
        params, buffers = stack_module_state(list(models))
        self.names = list(params)
        self.stacked = nn.ParameterList()
        for name in self.names:
            p = nn.Parameter(params[name].detach().clone())
            setattr(p, PACKED, 1)
            self.stacked.append(p)
        self._buffers_stacked = {n: b.detach().clone() for n, b in buffers.items()}
        self.shell = copy.deepcopy(models[0])  # its own tensors are never used: functional_call swaps them in
        for p in self.shell.parameters():
            p.requires_grad_(False)
        self.is_decoder = is_decoder
        self.register_buffer("flags", unmask_flags(specs, num_layers) if is_decoder else torch.zeros(self.k, 0),
                             persistent=False)
        if is_decoder:
            apply_row_unmask(self.shell)

    def _apply(self, fn, *args, **kwargs):
        self._buffers_stacked = {n: fn(b) for n, b in self._buffers_stacked.items()}
        return super()._apply(fn, *args, **kwargs)

    def forward(self, input_ids, attention_mask, labels=None, **_) -> PackOutput:
        from torch.func import functional_call, vmap

        shell, decoder = self.shell, self.is_decoder

        def one(params, buffers, flags):
            kw = {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
            if decoder:
                kw[FLAGS_KWARG] = flags
            out = functional_call(shell, (params, buffers), (), kw)
            return (out.loss if labels is not None else out.logits.new_zeros(())), out.logits

        params = dict(zip(self.names, self.stacked))
        losses, logits = vmap(one, randomness="different")(params, self._buffers_stacked, self.flags)
        if labels is None:
            return PackOutput(logits=logits)
        return PackOutput(loss=losses.sum(), run_losses=losses, logits=logits)

    def stacked_parameters(self) -> list[nn.Parameter]:
        return list(self.stacked)

    def clip_grad_norm_(self, max_norm: float) -> torch.Tensor:
        return clip_per_run(self.stacked_parameters(), max_norm, self.k)

    def run_weights(self, k: int) -> dict[str, torch.Tensor]:
        return {n: p[k].detach() for n, p in zip(self.names, self.stacked)}


def peft_weights(peft_model, head: str) -> dict:
    """A peft model's LoRA A/B (by module name inside the base), scaling, dropout and trained head."""
    from peft.tuners.lora import LoraLayer

    inner = peft_model.base_model.model
    lora, scaling, dropout = {}, None, 0.0
    for name, mod in inner.named_modules():
        if isinstance(mod, LoraLayer) and "default" in mod.lora_A:
            lora[name] = (mod.lora_A["default"].weight.detach().clone(), mod.lora_B["default"].weight.detach().clone())
            scaling = mod.scaling["default"]
            drop = mod.lora_dropout["default"]
            dropout = drop.p if isinstance(drop, nn.Dropout) else 0.0
    wrapper = getattr(inner, head)
    layer = wrapper.modules_to_save["default"] if hasattr(wrapper, "modules_to_save") else wrapper
    bias = None if layer.bias is None else layer.bias.detach().clone()
    return {"lora": lora, "scaling": scaling, "dropout": dropout, "head": (layer.weight.detach().clone(), bias)}


@torch.no_grad()
def load_peft_weights(peft_model, head: str, weights: dict) -> None:
    """Write one run's trained weights (from :meth:`LoraPack.run_weights`) into its ordinary peft model."""
    inner = peft_model.base_model.model
    for name, (a, b) in weights["lora"].items():
        mod = inner.get_submodule(name)
        mod.lora_A["default"].weight.copy_(a)
        mod.lora_B["default"].weight.copy_(b)
    wrapper = getattr(inner, head)
    layer = wrapper.modules_to_save["default"] if hasattr(wrapper, "modules_to_save") else wrapper
    layer.weight.copy_(weights["head"][0])
    if layer.bias is not None:
        layer.bias.copy_(weights["head"][1])


def collate_pack(batches: Sequence[tuple[list, list]], pad_id: int) -> dict:
    """The runs' batches (``(input_ids, labels)`` lists, one pair per run) as one padded batch with run indices."""
    from .batching import collate

    ids = [x for b in batches for x in b[0]]
    labels = [y for b in batches for y in b[1]]
    batch = collate(ids, labels, pad_id)
    batch["run_index"] = torch.tensor([k for k, b in enumerate(batches) for _ in b[0]], dtype=torch.long)
    return batch


def pack_sizes(n_jobs: int, k: int) -> list[int]:
    """Split ``n_jobs`` runs into packs of at most ``k``, as even as possible (9 runs, k=4 -> 3, 3, 3)."""
    if n_jobs <= 0:
        return []
    n_packs = math.ceil(n_jobs / k)
    base, extra = divmod(n_jobs, n_packs)
    return [base + (1 if i < extra else 0) for i in range(n_packs)]
