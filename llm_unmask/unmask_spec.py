"""Unmask specs and plans: which decoder layers of a model should look right.

A spec is what users write (a group code such as ``0110``, ``layers:0,3,5-7``, ``all-layers``, or a list of
layer indices); a plan is the same resolved against a model's layer count. Kept apart from the hooks in
:mod:`llm_unmask.unmask` so that parsing (CLI, configs, search spaces) needs no model code.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

from .errors import UnmaskError


def layer_groups(num_layers: int, num_groups: int) -> list[range]:
    """Split ``num_layers`` decoder layers into ``num_groups`` contiguous groups, input side first.

    When the split is uneven the FIRST groups get one extra layer: 30 layers in 4 groups are sized
    8, 8, 7, 7 (layers 0-7, 8-15, 16-22, 23-29). Group codes mean exactly this split, so results
    reported for a code on a given model depend on it.
    """
    if num_layers < 1:
        raise UnmaskError(f"a model needs at least 1 decoder layer to group, got {num_layers}")
    if not 1 <= num_groups <= num_layers:
        raise UnmaskError(
            f"cannot split {num_layers} layers into {num_groups} groups; "
            f"use between 1 and {num_layers} groups"
        )
    base, extra = divmod(num_layers, num_groups)
    groups, start = [], 0
    for g in range(num_groups):
        size = base + (1 if g < extra else 0)
        groups.append(range(start, start + size))
        start += size
    return groups


@dataclass(frozen=True)
class UnmaskPlan:
    """Which decoder layers run without the causal mask.

    ``unmasked`` has one entry per decoder layer (index 0 = nearest the input); ``spec`` is the
    canonical text to record with results (the group code as given, ``"none"``, ``"all"`` or
    ``"layers:0,3,5-7"``).
    """

    unmasked: tuple[bool, ...]
    spec: str

    @property
    def layers(self) -> tuple[int, ...]:
        """Indices of the unmasked layers."""
        return tuple(i for i, u in enumerate(self.unmasked) if u)

    @property
    def num_layers(self) -> int:
        return len(self.unmasked)

    def __str__(self) -> str:
        return self.spec


def parse_layer_list(text: str) -> tuple[int, ...]:
    """Parse ``"16-31"`` or ``"0,3,5-7"`` (an optional ``layers:`` prefix is allowed) into sorted indices.

    Ranges are inclusive at both ends, as people write them.
    """
    if not isinstance(text, str):
        raise UnmaskError(f"layer list must be text like '0,3,5-7', got {text!r}")
    body = text.strip()
    if body.lower().startswith("layers:"):
        body = body[len("layers:") :]
    out: set[int] = set()
    for part in body.split(","):
        part = part.strip()
        lo, sep, hi = part.partition("-")
        try:
            if not part or (sep and not hi.strip()):
                raise ValueError
            a = int(lo.strip(), 10)
            b = int(hi.strip(), 10) if sep else a
        except ValueError:
            raise UnmaskError(
                f"malformed layer list {text!r} at {part!r}: use comma-separated layer indices and "
                f"inclusive ranges of non-negative integers, e.g. 'layers:0,3,5-7'"
            ) from None
        if a < 0 or b < 0:
            raise UnmaskError(f"malformed layer list {text!r}: layer indices must be non-negative")
        if b < a:
            raise UnmaskError(
                f"malformed layer list {text!r}: range {part!r} runs backwards; write '{b}-{a}'"
            )
        out.update(range(a, b + 1))
    return tuple(sorted(out))


def _format_layers(layers: tuple[int, ...]) -> str:
    """Inverse of parse_layer_list: (0,3,5,6,7) -> '0,3,5-7'."""
    parts, i = [], 0
    while i < len(layers):
        j = i
        while j + 1 < len(layers) and layers[j + 1] == layers[j] + 1:
            j += 1
        parts.append(str(layers[i]) if i == j else f"{layers[i]}-{layers[j]}")
        i = j + 1
    return ",".join(parts)


def _plan_from_layers(layers: tuple[int, ...], num_layers: int, given: Any) -> UnmaskPlan:
    bad = [i for i in layers if not 0 <= i < num_layers]
    if bad:
        raise UnmaskError(
            f"unmask {given!r}: layer index {bad[0]} is out of range; this model has {num_layers} "
            f"decoder layers, indices 0-{num_layers - 1}"
        )
    if not layers:
        return UnmaskPlan((False,) * num_layers, "none")
    chosen = set(layers)
    return UnmaskPlan(tuple(i in chosen for i in range(num_layers)), "layers:" + _format_layers(layers))


ALL_LAYERS = "all-layers"

_ALLOWED = (
    "'none', 'all-layers' (or 'all'), a group code of 0/1 digits (one digit per layer group, left = nearest the input, "
    "e.g. '0110'), or explicit layers like 'layers:0,3,5-7'"
)


def parse_unmask(spec: Any, num_layers: int) -> UnmaskPlan:
    """Turn an unmask specification into a per-layer plan for a model with ``num_layers`` layers.

    Accepted: ``None``/``"none"`` (stock causal model), ``"all-layers"`` or ``"all"`` (every layer; recorded as
    ``"all"``), a 0/1 group code of length m <= num_layers
    (split by :func:`layer_groups`; m == num_layers is a per-layer bit string), ``"layers:0,3,5-7"`` or a
    list/tuple of ints (explicit layers), or an :class:`UnmaskPlan` (checked against ``num_layers``).
    """
    if isinstance(spec, UnmaskPlan):
        if spec.num_layers != num_layers:
            raise UnmaskError(
                f"unmask plan {spec.spec!r} was made for {spec.num_layers} layers but this model has {num_layers}"
            )
        return spec
    if spec is None:
        return UnmaskPlan((False,) * num_layers, "none")
    if isinstance(spec, (list, tuple)):
        try:
            if any(isinstance(x, bool) for x in spec):
                raise TypeError
            layers = tuple(sorted({operator.index(x) for x in spec}))
        except TypeError:
            raise UnmaskError(f"unmask layer list {spec!r} must hold integer layer indices") from None
        return _plan_from_layers(layers, num_layers, spec)
    if not isinstance(spec, str):
        raise UnmaskError(f"unmask spec {spec!r} has type {type(spec).__name__}; expected {_ALLOWED}")
    text = spec.strip()
    low = text.lower()
    if low == "none":
        return UnmaskPlan((False,) * num_layers, "none")
    if low in ("all", ALL_LAYERS):
        return UnmaskPlan((True,) * num_layers, "all")
    if low.startswith("layers:"):
        return _plan_from_layers(parse_layer_list(text), num_layers, spec)
    if not text:
        raise UnmaskError(f"empty unmask spec; expected {_ALLOWED}")
    bad = sorted({c for c in text if c not in "01"})
    if bad:
        raise UnmaskError(f"unmask code {spec!r} contains {', '.join(map(repr, bad))}; expected {_ALLOWED}")
    if len(text) > num_layers:
        raise UnmaskError(
            f"unmask code {spec!r} has {len(text)} groups but the model has only {num_layers} decoder layers; "
            f"use at most {num_layers} digits"
        )
    flags: list[bool] = []
    for digit, group in zip(text, layer_groups(num_layers, len(text))):
        flags.extend([digit == "1"] * len(group))
    return UnmaskPlan(tuple(flags), text)


# ---------------------------------------------------------------------------------------- discovery
