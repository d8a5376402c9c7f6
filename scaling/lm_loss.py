"""The pre-training loss without the logits: a fused linear + cross-entropy on the final hidden states.

A 68M RoBERTa with the 50,265-token vocabulary spends ~57% of its FLOPs in the vocabulary projection, and
materializing its logits (upcast to fp32) costs ~6.6 GB per micro-batch of 64 x 512 tokens. Here the
projection and the loss are computed chunk by chunk, the gradients with respect to the hidden states, the
tied decoder weight and the bias in the same pass, so no full logits tensor ever exists:

* CUDA with ``liger-kernel`` installed (the ``gpu`` extra): Liger's fused linear cross-entropy kernel;
* everywhere else: :class:`ChunkedLinearCrossEntropy`, the same algorithm in plain PyTorch.

The vocabulary is padded to a multiple of 64 rows for the matmuls inside the loss only: padded rows have
zero weight and a logit bias of :data:`PAD_LOGIT`, so they get probability exactly 0, are never predicted,
never counted in the loss and get no gradient. The model itself keeps the paper's vocabulary (its saved
checkpoints are the plain 50,265-token RoBERTa shape).

MLM computes the head only at the masked positions: they are gathered into a fixed number of rows
(:func:`mlm_capacity`, 8 standard deviations above the expected count, so shapes stay static and no host
sync is needed); a batch with more masked tokens than that is counted in ``dropped_labels`` and the run
stops with an error when it is read (never silently: the probability is below 1e-15 per micro-batch).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

IGNORE = -100
VOCAB_MULTIPLE = 64
PAD_LOGIT = -1.0e4  # exp(PAD_LOGIT - max) is exactly 0 in fp32 and bf16 for any real logit
CHUNK_ELEMENTS = 2**28  # rows per chunk x padded vocabulary: ~1 GB of fp32 logits at a time


def padded_width(vocab: int, multiple: int = VOCAB_MULTIPLE) -> int:
    return -(-vocab // multiple) * multiple


def mlm_capacity(n_positions: int, probability: float) -> int:
    """Rows the MLM head is computed on: mean + 8 std of Binomial(n, p), rounded up to 64, at most n."""
    mean = n_positions * probability
    bound = mean + 8.0 * math.sqrt(max(mean * (1.0 - probability), 1.0)) + 8
    return min(n_positions, padded_width(math.ceil(bound)))


class ChunkedLinearCrossEntropy(torch.autograd.Function):
    """Sum of cross-entropies of ``hidden @ weight.T + bias`` against ``labels`` (rows labelled -100 are
    ignored), divided by the number of labelled rows; gradients computed in the forward, chunk by chunk.

    ``hidden`` is in the compute dtype (bf16 under autocast); ``weight`` and ``bias`` are the fp32 master
    parameters: they are cast and padded once per call, and their gradients accumulate in fp32.
    """

    @staticmethod
    def forward(ctx, hidden, weight, bias, labels, chunk_rows: int):
        vocab, dim = weight.shape
        width = padded_width(vocab)
        cdt = hidden.dtype
        w = hidden.new_zeros(width, dim)
        w[:vocab] = weight.detach()
        b = torch.full((width,), PAD_LOGIT, dtype=torch.float32, device=hidden.device)
        b[:vocab] = bias.detach().float()
        valid = labels != IGNORE
        target = torch.where(valid, labels, 0)
        n_valid = valid.sum().clamp(min=1).float()
        loss_sum = torch.zeros((), dtype=torch.float32, device=hidden.device)
        grad_hidden = torch.empty_like(hidden)
        grad_w = torch.zeros(width, dim, dtype=torch.float32, device=hidden.device)
        grad_b = torch.zeros(width, dtype=torch.float32, device=hidden.device)
        for start in range(0, hidden.shape[0], chunk_rows):
            h = hidden[start : start + chunk_rows]
            t = target[start : start + chunk_rows, None]
            v = valid[start : start + chunk_rows, None]
            logits = (h @ w.t()).float() + b
            lse = logits.logsumexp(dim=-1, keepdim=True)
            loss_sum += ((lse - logits.gather(1, t)) * v).sum()
            g = logits.sub_(lse).exp_()  # softmax, in place of the logits
            g.scatter_add_(1, t, torch.full_like(t, -1, dtype=g.dtype))  # minus the one-hot target
            g.mul_(v)  # ignored rows contribute nothing
            grad_b += g.sum(0)
            g = g.to(cdt)
            grad_hidden[start : start + chunk_rows] = g @ w
            grad_w += (g.t() @ h).float()
        ctx.save_for_backward(grad_hidden, grad_w[:vocab], grad_b[:vocab], n_valid)
        ctx.bias_dtype = bias.dtype
        return loss_sum / n_valid

    @staticmethod
    def backward(ctx, grad_out):
        grad_hidden, grad_w, grad_b, n_valid = ctx.saved_tensors
        scale = grad_out / n_valid
        return grad_hidden * scale.to(grad_hidden.dtype), grad_w * scale, (grad_b * scale).to(ctx.bias_dtype), None, None


def _liger():
    """Liger's fused linear cross-entropy, only on CUDA and only when installed (imported lazily)."""
    if not torch.cuda.is_available():
        return None
    try:
        from liger_kernel.transformers.functional import liger_fused_linear_cross_entropy
    except ImportError:
        return None
    # already one fused kernel: torch.compile runs it as is rather than tracing its Triton launches
    return torch.compiler.disable(liger_fused_linear_cross_entropy)


def linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, labels: torch.Tensor,
                         *, kernel: str = "auto", chunk_rows: int | None = None) -> torch.Tensor:
    """Mean cross-entropy of ``hidden @ weight.T + bias`` over rows whose label is not -100, without the
    logits. ``hidden``: (rows, dim); ``labels``: (rows,). ``kernel``: auto (Liger on CUDA if installed,
    else chunked), liger or chunked. Under autocast the matmuls run in the autocast dtype."""
    device_type = hidden.device.type
    cdt = torch.get_autocast_dtype(device_type) if torch.is_autocast_enabled(device_type) else hidden.dtype
    hidden = hidden.to(cdt)
    width = padded_width(weight.shape[0])
    liger = _liger() if kernel in ("auto", "liger") else None
    if kernel == "liger" and liger is None:
        raise RuntimeError("kernel 'liger' needs CUDA and the liger-kernel package (pip install 'looking-right[gpu]')")
    with torch.autocast(device_type, enabled=False):
        if liger is not None:
            w = F.pad(weight.to(cdt), (0, 0, 0, width - weight.shape[0]))
            b = F.pad(bias.to(cdt), (0, width - bias.shape[0]), value=PAD_LOGIT)
            out = liger(hidden, w, labels, bias=b, ignore_index=IGNORE, reduction="sum")
            out = out[0] if isinstance(out, tuple) else out
            return out.float() / (labels != IGNORE).sum().clamp(min=1)
        rows = chunk_rows or max(1, CHUNK_ELEMENTS // width)
        return ChunkedLinearCrossEntropy.apply(hidden, weight, bias, labels, rows)


@dataclass
class LMOutput:
    loss: torch.Tensor


class FusedLMLoss(torch.nn.Module):
    """``model(input_ids, labels).loss`` of a RobertaForCausalLM / RobertaForMaskedLM, computed without its
    logits (see the module docstring); ``fused=False`` returns the model's own loss (full logits), the
    reference the fused path is tested against. The KV cache is never built (``use_cache=False``)."""

    def __init__(self, lm: torch.nn.Module, arch: str, mlm_probability: float = 0.15, fused: bool = True,
                 kernel: str = "auto"):
        super().__init__()
        self.lm, self.arch, self.p, self.fused, self.kernel = lm, arch, mlm_probability, fused, kernel
        self.register_buffer("dropped_labels", torch.zeros((), dtype=torch.long), persistent=False)

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor) -> LMOutput:
        if not self.fused:
            extra = {"use_cache": False} if self.arch == "decoder" else {}
            return LMOutput(self.lm(input_ids=input_ids, labels=labels, **extra).loss)
        base, head = self.lm.roberta, self.lm.lm_head
        hidden = base(input_ids=input_ids, use_cache=False, return_dict=True).last_hidden_state
        hidden = hidden.reshape(-1, hidden.shape[-1])
        if self.arch == "decoder":  # next-token targets: position t predicts token t+1; the last has none
            labels = F.pad(labels[:, 1:], (0, 1), value=IGNORE).reshape(-1)
        else:  # only the masked positions, gathered into a fixed number of rows (no host sync)
            labels = labels.reshape(-1)
            chosen = labels != IGNORE
            cap = mlm_capacity(labels.numel(), self.p)
            rows = torch.sort(chosen.to(torch.uint8), descending=True, stable=True).indices[:cap]
            with torch.no_grad():
                self.dropped_labels += (chosen.sum() - cap).clamp(min=0)
            hidden, labels = hidden[rows], labels[rows]
        x = head.layer_norm(F.gelu(head.dense(hidden)))  # RobertaLMHead before its decoder
        loss = linear_cross_entropy(x, head.decoder.weight, head.bias, labels, kernel=self.kernel)
        return LMOutput(loss)
