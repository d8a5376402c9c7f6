"""Layer-group unmasking: remove the causal mask from chosen decoder layers of a Hugging Face model.

One mechanism serves every architecture. The backbone (e.g. ``LlamaModel``) builds one causal mask, or
one per layer type for sliding-window models, and hands it to each decoder layer as ``attention_mask``.
For every *unmasked* layer we

* swap that argument, in a forward pre-hook on the layer, for transformers' own padding-only
  bidirectional mask (``create_bidirectional_mask``): real tokens see every real token, padding stays
  hidden. Without padding the mask is ``None`` so fused SDPA/flash kernels are kept;
* set ``is_causal = False`` on the layer's self-attention module, because SDPA and flash attention
  fall back to that flag when the mask is ``None``. Changing only the mask would leave them causal.

The hook sits on the layer rather than the attention module because ``GradientCheckpointingLayer``
checkpoints ``forward``: layer hooks run once, outside the checkpoint, and the recomputation reuses the
already-swapped arguments.

Sliding windows (Mistral, Gemma2/3, Qwen sliding layers) are not applied in unmasked layers: an
unmasked layer sees the whole sequence.

Per-row plans (:func:`apply_row_unmask`) serve packs, where runs with different unmask configurations share
one forward: every layer is hooked, and the model is called with ``unmask_flags``, a 0/1 tensor of shape
(rows, layers) (or (layers,) per model under ``torch.func.vmap``). Each layer then gets, per row, either the
mask the backbone built (causal + padding) or the padding-only bidirectional mask, both materialized by
transformers' own builders and chosen with one ``torch.where``.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedModel

from .errors import UnmaskError
from .unmask_spec import UnmaskPlan, layer_groups, parse_layer_list, parse_unmask

__all__ = [
    "FLAGS_KWARG",
    "UnmaskPlan",
    "apply_row_unmask",
    "apply_unmask",
    "current_plan",
    "find_decoder_layers",
    "layer_groups",
    "parse_layer_list",
    "parse_unmask",
    "remove_unmask",
    "unmask_flags",
]

# Model types whose mask handling our tests check against transformers' own bidirectional model. Anything
# else is refused: an unknown attention implementation may ignore the swapped mask (silently causal) or
# crash deep inside (Falcon under eager attention adds our None mask to its scores).
SUPPORTED_MODEL_TYPES = ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "gemma3_text", "roberta")

# The backbone's KV-cache argument: ``past_key_values`` up to transformers 5.23, ``cache`` from 5.24.
CACHE_ARGS = ("past_key_values", "cache")

_STATE_ATTR = "_looking_right_unmask"
_ORIG_CAUSAL_ATTR = "_looking_right_orig_is_causal"
_UNSET = object()



def _orig_is_causal(module: nn.Module) -> Any:
    """The module's is_causal as the library set it, even while we have it switched off."""
    if _ORIG_CAUSAL_ATTR in module.__dict__:
        return module.__dict__[_ORIG_CAUSAL_ATTR]
    return getattr(module, "is_causal", None)


def _causal_attentions(block: nn.Module) -> list[nn.Module]:
    """Self-attention modules in a block: those whose is_causal is (originally) True.

    Cross-attention modules carry is_causal=False, so they are never touched.
    """
    return [m for m in block.modules() if hasattr(m, "is_causal") and _orig_is_causal(m) is True]


def _num_layers_of(module: nn.Module) -> int | None:
    cfg = getattr(module, "config", None)
    n = getattr(cfg, "num_hidden_layers", None)
    return n if isinstance(n, int) and not isinstance(n, bool) else None


def find_decoder_layers(model: nn.Module) -> tuple[nn.Module, nn.ModuleList]:
    """Return ``(backbone, layers)`` for any HF decoder, bare, with a head, inside a custom module or peft.

    ``layers`` is the ModuleList whose length equals ``config.num_hidden_layers`` and whose every block
    holds a causal self-attention module (``is_causal`` True). ``backbone`` is the innermost module with
    that config containing the list: the one that receives the 2D padding mask and builds the causal mask
    (``LlamaModel``; ``RobertaModel`` for RoBERTa, whose list sits in ``RobertaModel.encoder``).
    """
    if not isinstance(model, nn.Module):
        raise UnmaskError(
            f"cannot unmask a {type(model).__name__}: expected a torch.nn.Module holding a decoder"
        )
    named = dict(model.named_modules())
    found: list[tuple[str, nn.Module, nn.ModuleList]] = []
    non_causal: list[str] = []
    for name, mod in named.items():
        if not isinstance(mod, nn.ModuleList) or len(mod) == 0:
            continue
        parts = name.split(".") if name else []
        ancestors = [named.get(".".join(parts[:k])) for k in range(len(parts) - 1, -1, -1)]
        ancestors = [a for a in ancestors if a is not None and _num_layers_of(a) is not None]
        # Prefer a PreTrainedModel: helpers such as RobertaEncoder carry a config too but only ever see the
        # already-built 4D mask, never the 2D padding mask.
        owner = next(
            (a for a in ancestors if isinstance(a, PreTrainedModel)), ancestors[0] if ancestors else None
        )
        if owner is None or len(mod) != _num_layers_of(owner):
            continue
        if all(_causal_attentions(block) for block in mod):
            found.append((name, owner, mod))
        elif any(hasattr(m, "is_causal") for block in mod for m in block.modules()):
            non_causal.append(f"{type(owner).__name__} ({name})")
    cls = type(model).__name__
    if not found:
        if non_causal:
            raise UnmaskError(
                f"{cls} cannot be unmasked: its layers ({', '.join(non_causal)}) have no causal self-attention; "
                f"encoders such as BERT or RoBERTa with is_decoder=False already attend in both directions"
            )
        raise UnmaskError(
            f"{cls} cannot be unmasked: found no list of config.num_hidden_layers decoder layers with a causal "
            f"self-attention module (an 'is_causal' attribute); only Hugging Face decoder models are supported"
        )
    if len(found) > 1:
        names = ", ".join(repr(n) for n, _, _ in found)
        raise UnmaskError(f"{cls} has several decoder layer lists ({names}); cannot tell which one to unmask")
    _, owner, layers = found[0]
    model_type = getattr(owner.config, "model_type", None)
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise UnmaskError(
            f"{cls} cannot be unmasked: model type {model_type!r} ({type(owner).__name__}) is not supported; "
            f"supported model types: {', '.join(SUPPORTED_MODEL_TYPES)}"
        )
    return owner, layers


# ------------------------------------------------------------------------------------------ hooks
#
# Hooks are module-level functions that find their state in the hooked module's __dict__ (never in a
# closure), so copy.deepcopy / pickling of an unmasked model yields a copy that refers to its own state.

_LAYER_ATTR = "_looking_right_unmask_layer"


class _State:
    """Everything apply_unmask changed on one backbone, plus the per-forward padding-mask context."""

    def __init__(self, plan: UnmaskPlan, backbone: nn.Module, per_row: bool = False):
        self.plan, self.per_row = plan, per_row
        self.flags: torch.Tensor | None = None  # per-row plans: this forward's (rows, layers) flags
        self.model_cls = type(backbone).__name__
        self.config = backbone.config
        _, self.mask_idx = _param_index(backbone.forward, "attention_mask")
        self.cache_idx = {name: _param_index(backbone.forward, name)[1] for name in CACHE_ARGS}
        _, self.pos_idx = _param_index(backbone.forward, "position_ids")
        self.handles: list[Any] = []
        self.layers: list[nn.Module] = []
        self.saved: list[tuple[nn.Module, str, Any]] = []  # (module, attribute, original value)
        self.reset()

    def reset(self) -> None:
        self.active = False
        self.mask2d: torch.Tensor | None = None
        self.position_ids: Any = None
        self.bidir: Any = _UNSET
        self.causal: Any = _UNSET

    def undo(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()
        for layer in self.layers:
            layer.__dict__.pop(_LAYER_ATTR, None)
            layer.__dict__.pop(_FLAGS_ATTR, None)
        self.layers.clear()
        for module, attr, value in reversed(self.saved):
            setattr(module, attr, value)
            module.__dict__.pop(_ORIG_CAUSAL_ATTR, None)
        self.saved.clear()
        self.reset()
        self.flags = None


class _LayerInfo:
    """What an unmasked layer's hook needs: the shared state and where its arguments sit."""

    def __init__(self, state: _State, layer: nn.Module, attn_modules: list[nn.Module], index: int = 0):
        self.index = index
        sig, self.mask_idx = _param_index(layer.forward, "attention_mask")
        _, hs_idx = _param_index(layer.forward, "hidden_states")
        self.hs_idx = 0 if hs_idx is None else hs_idx
        self.state = state
        self.layer_cls = type(layer).__name__
        if sig is None or (self.mask_idx is None and "attention_mask" not in sig.parameters):
            raise UnmaskError(
                f"{state.model_cls} cannot be unmasked: its decoder layer {self.layer_cls} takes no "
                f"'attention_mask' argument"
            )
        # Mistral-style attention hands config.sliding_window straight to flash kernels; modules that own
        # a `sliding_window` attribute (Gemma2/3, Qwen2/3) are widened by apply_unmask instead.
        self.config_window = not any(hasattr(m, "sliding_window") for m in attn_modules)


def _param_index(fn: Any, name: str) -> tuple[inspect.Signature | None, int | None]:
    """Signature of a bound forward and the positional index of parameter ``name`` (or None)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None, None
    for i, p in enumerate(sig.parameters.values()):
        if p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            break
        if p.name == name:
            return sig, i
    return sig, None


def _get_arg(name: str, index: int | None, args: tuple, kwargs: dict) -> tuple[bool, Any]:
    if name in kwargs:
        return True, kwargs[name]
    if index is not None and index < len(args):
        return True, args[index]
    return False, None


def _cache_length(cache: Any) -> int:
    get_len = getattr(cache, "get_seq_length", None)
    if callable(get_len):
        return int(get_len())
    try:
        return len(cache)
    except TypeError:
        return 1  # unknown cache object: treat as filled


def _bidirectional_mask(config: Any, hidden: torch.Tensor, mask2d: Any, position_ids: Any,
                        materialize: bool = False) -> Any:
    """transformers' padding-only bidirectional mask, kept within each sequence of a packed batch.

    Packing (several sequences in one row, no 2D mask, position_ids restarting at 0) is detected the
    way transformers detects it for causal masks; without this an unmasked layer would attend across
    the packed sequences.
    """
    from transformers.masking_utils import (
        create_bidirectional_mask,
        find_packed_sequence_indices,
        packed_sequence_mask_function,
    )

    extra = {}
    if (
        mask2d is None
        and isinstance(position_ids, torch.Tensor)
        and position_ids.dim() == 2
        and position_ids.shape[-1] == hidden.shape[1]
    ):
        packed = find_packed_sequence_indices(position_ids.expand(hidden.shape[0], -1))
        if packed is not None:
            extra["and_mask_function"] = packed_sequence_mask_function(packed)
    if materialize:
        extra["allow_is_bidirectional_skip"] = False
    return create_bidirectional_mask(config=config, inputs_embeds=hidden, attention_mask=mask2d, **extra)


def _row_mask(state: _State, info: _LayerInfo, hidden: torch.Tensor, incoming: Any) -> torch.Tensor:
    """Per-row plans: each row's mask for this layer, the backbone's causal one or the bidirectional one.

    ``torch.where`` over two masks of the same format (bool for SDPA, additive for eager), so the choice is
    an ordinary tensor input: rows of a pack, or one flag per model under ``torch.func.vmap``."""
    flags = state.flags
    if flags is None:
        raise UnmaskError(
            f"{state.model_cls} has a per-row unmask plan but was called without {FLAGS_KWARG}=; pass a 0/1 "
            f"tensor of shape (rows, {state.plan.num_layers})"
        )
    if flags.shape[-1] != state.plan.num_layers or flags.dim() > 2 or (
            flags.dim() == 2 and flags.shape[0] != hidden.shape[0]):
        raise UnmaskError(
            f"{FLAGS_KWARG} has shape {tuple(flags.shape)}; expected ({hidden.shape[0]}, {state.plan.num_layers}) "
            f"(one row per input row, one column per decoder layer) or ({state.plan.num_layers},)"
        )
    if isinstance(incoming, torch.Tensor) and incoming.dim() == 4:
        causal = incoming  # the backbone's own mask for this layer (sliding windows included)
    else:  # SDPA's fused causal path (None): materialize the same mask
        if state.causal is _UNSET:
            from transformers.masking_utils import create_causal_mask

            state.causal = create_causal_mask(config=state.config, inputs_embeds=hidden, attention_mask=state.mask2d,
                                              past_key_values=None, position_ids=state.position_ids,
                                              allow_is_causal_skip=False)
        causal = state.causal
    column = flags[..., info.index].to(torch.bool).reshape(-1, 1, 1, 1)
    return torch.where(column, state.bidir, causal)


def _backbone_pre_hook(module: nn.Module, args: tuple, kwargs: dict) -> None:
    """Capture the 2D padding mask for this forward; refuse inputs unmasked layers cannot honour."""
    state: _State = module.__dict__[_STATE_ATTR]
    _, mask = _get_arg("attention_mask", state.mask_idx, args, kwargs)
    caches = [_get_arg(name, idx, args, kwargs)[1] for name, idx in state.cache_idx.items()]
    if mask is not None and (not isinstance(mask, torch.Tensor) or mask.dim() != 2):
        shape = f"{mask.dim()}D tensor" if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise UnmaskError(
            f"{state.model_cls} with unmasked layers {state.plan.spec!r} got an attention_mask that is a {shape}; "
            f"pass the 2D (batch, seq) padding mask so the unmasked layers can build their own mask"
        )
    if any(cache is not None and _cache_length(cache) > 0 for cache in caches):
        raise UnmaskError(
            f"{state.model_cls} with unmasked layers {state.plan.spec!r} got a non-empty KV cache; unmasked layers "
            f"need the whole sequence at once, so incremental decoding with a cache is not supported"
        )
    _, state.position_ids = _get_arg("position_ids", state.pos_idx, args, kwargs)
    state.active, state.mask2d, state.bidir = True, mask, _UNSET


def _backbone_post_hook(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
    state = module.__dict__.get(_STATE_ATTR)
    if state is not None:
        state.reset()  # also after an exception (always_call): never leak a mask into the next forward


def _layer_pre_hook(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """Swap the layer's causal mask for the shared padding-only bidirectional mask."""
    info: _LayerInfo = module.__dict__[_LAYER_ATTR]
    state = info.state
    if not state.active:
        raise UnmaskError(
            f"{info.layer_cls} of {state.model_cls} is unmasked but was called outside {state.model_cls}.forward, "
            f"so its padding mask is unknown; call the model, not the layer"
        )
    present, _ = _get_arg("attention_mask", info.mask_idx, args, kwargs)
    if not present:
        raise UnmaskError(
            f"{state.model_cls} cannot be unmasked: it calls {info.layer_cls} without an attention_mask argument, "
            f"so the layer's mask cannot be replaced"
        )
    _, hidden = _get_arg("hidden_states", info.hs_idx, args, kwargs)
    if not isinstance(hidden, torch.Tensor):
        raise UnmaskError(f"{state.model_cls}: could not find the hidden states passed to {info.layer_cls}")
    config = state.config
    window = getattr(config, "sliding_window", None)
    impl = str(getattr(config, "_attn_implementation", ""))
    if info.config_window and window and "flash" in impl and hidden.shape[1] > window:
        raise UnmaskError(
            f"{state.model_cls} under {impl} passes config.sliding_window={window} straight to the kernel, so "
            f"unmasked layers would still be windowed for sequences longer than {window}; use sdpa or eager"
        )
    if state.bidir is _UNSET:
        m2 = state.mask2d
        if m2 is not None and m2.shape[-1] != hidden.shape[1]:
            raise UnmaskError(
                f"{state.model_cls}: attention_mask covers {m2.shape[-1]} positions but the sequence has "
                f"{hidden.shape[1]}; unmasked layers need a mask exactly as long as the input"
            )
        # One mask per forward, shared by all unmasked layers. None when nothing is padded (fused kernels).
        state.bidir = _bidirectional_mask(config, hidden, m2, state.position_ids, materialize=state.per_row)
    mask = state.bidir
    if state.per_row:
        _, incoming = _get_arg("attention_mask", info.mask_idx, args, kwargs)
        mask = _row_mask(state, info, hidden, incoming)
    if "attention_mask" in kwargs:
        kwargs["attention_mask"] = mask
    else:
        args = args[: info.mask_idx] + (mask,) + args[info.mask_idx + 1 :]
    if "is_causal" in kwargs and not state.per_row:  # per-row masks are always materialized
        kwargs["is_causal"] = False
    return args, kwargs


FLAGS_KWARG = "unmask_flags"
_FLAGS_ATTR = "_looking_right_unmask_flags"


def _flags_pre_hook(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """Per-row plans: take ``unmask_flags`` out of the model's inputs (the model itself never sees it)."""
    state: _State = module.__dict__[_FLAGS_ATTR]
    flags = kwargs.pop(FLAGS_KWARG, None)
    if flags is not None and not isinstance(flags, torch.Tensor):
        raise UnmaskError(f"{FLAGS_KWARG} must be a tensor, got {type(flags).__name__}")
    state.flags = flags
    return args, kwargs


def _flags_post_hook(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
    state = module.__dict__.get(_FLAGS_ATTR)
    if state is not None:
        state.flags = None


# -------------------------------------------------------------------------------------------- API


def _find_state(model: nn.Module) -> tuple[nn.Module, _State] | None:
    if not isinstance(model, nn.Module):
        raise UnmaskError(f"expected a torch.nn.Module, got {type(model).__name__}")
    for mod in model.modules():
        state = mod.__dict__.get(_STATE_ATTR)
        if state is not None:
            return mod, state
    return None


def remove_unmask(model: nn.Module) -> None:
    """Undo :func:`apply_unmask`: remove every hook and restore the attention modules' flags."""
    while (found := _find_state(model)) is not None:
        mod, state = found
        state.undo()
        del mod.__dict__[_STATE_ATTR]


def current_plan(model: nn.Module) -> UnmaskPlan | None:
    """The plan applied to ``model`` (``None`` if apply_unmask was never called or was removed)."""
    found = _find_state(model)
    return None if found is None else found[1].plan


def apply_unmask(model: nn.Module, spec: Any) -> UnmaskPlan:
    """Unmask the decoder layers chosen by ``spec`` (see :func:`parse_unmask`) and return the plan.

    Re-applying replaces the previous plan; ``"none"`` leaves the model exactly stock (no hooks). In an
    unmasked layer real tokens attend every real token; padding is never attended; sliding windows are
    not applied. Models must be called with a 2D padding mask (or none) and without a filled KV cache.
    """
    backbone, layers = find_decoder_layers(model)
    plan = parse_unmask(spec, len(layers))  # a bad spec leaves the current plan in place
    remove_unmask(model)
    state = _State(plan, backbone)
    try:
        if any(plan.unmasked):
            state.handles.append(backbone.register_forward_pre_hook(_backbone_pre_hook, with_kwargs=True))
            state.handles.append(
                backbone.register_forward_hook(_backbone_post_hook, with_kwargs=True, always_call=True)
            )
            for idx in plan.layers:
                layer = layers[idx]
                attns = _causal_attentions(layer)
                layer.__dict__[_LAYER_ATTR] = _LayerInfo(state, layer, attns)
                state.layers.append(layer)
                state.handles.append(layer.register_forward_pre_hook(_layer_pre_hook, with_kwargs=True))
                for attn in attns:
                    state.saved.append((attn, "is_causal", attn.is_causal))
                    attn.__dict__[_ORIG_CAUSAL_ATTR] = attn.is_causal
                    attn.is_causal = False
                    if getattr(attn, "sliding_window", None) is not None:
                        # Flash kernels read the window from here; SDPA/eager get it from the mask we replace.
                        state.saved.append((attn, "sliding_window", attn.sliding_window))
                        attn.sliding_window = None
    except BaseException:
        state.undo()
        raise
    backbone.__dict__[_STATE_ATTR] = state
    return plan


def apply_row_unmask(model: nn.Module) -> UnmaskPlan:
    """A per-row plan: every call of ``model`` takes ``unmask_flags`` (rows x layers, 1 = unmasked), so rows
    of one batch, or models under ``torch.func.vmap``, can each have their own unmask configuration.

    A row whose flags are all 0 gets exactly the backbone's causal mask (the stock model); padding is never
    attended in any row. Replaces any plan in place; :func:`apply_unmask` or :func:`remove_unmask` undo it.
    """
    backbone, layers = find_decoder_layers(model)
    impl = str(getattr(backbone.config, "_attn_implementation", ""))
    if "flash" in impl:
        raise UnmaskError(
            f"{type(model).__name__} uses {impl}: per-row unmask plans (packs) need per-row masks, which flash "
            f"kernels do not take; use attn_implementation sdpa or eager"
        )
    remove_unmask(model)
    plan = UnmaskPlan((True,) * len(layers), "per-row")
    state = _State(plan, backbone, per_row=True)
    try:
        state.handles.append(model.register_forward_pre_hook(_flags_pre_hook, with_kwargs=True))
        state.handles.append(model.register_forward_hook(_flags_post_hook, with_kwargs=True, always_call=True))
        model.__dict__[_FLAGS_ATTR] = state
        state.layers.append(model)  # undo() drops its _FLAGS_ATTR
        state.handles.append(backbone.register_forward_pre_hook(_backbone_pre_hook, with_kwargs=True))
        state.handles.append(backbone.register_forward_hook(_backbone_post_hook, with_kwargs=True, always_call=True))
        for idx, layer in enumerate(layers):
            layer.__dict__[_LAYER_ATTR] = _LayerInfo(state, layer, _causal_attentions(layer), idx)
            state.layers.append(layer)
            state.handles.append(layer.register_forward_pre_hook(_layer_pre_hook, with_kwargs=True))
    except BaseException:
        state.undo()
        raise
    backbone.__dict__[_STATE_ATTR] = state
    return plan


def unmask_flags(plans: Any, num_layers: int) -> torch.Tensor:
    """The (runs, layers) 0/1 tensor of a pack's unmask specs (index it by each row's run)."""
    return torch.tensor([list(parse_unmask(p, num_layers).unmasked) for p in plans], dtype=torch.bool)
