"""A pack's training state, saved run by run, so that any runs at the same update can be packed again.

Every trainable tensor of a pack is stacked along a leading run dimension (LoRA A/B and heads in
:class:`llm_unmask.pack.LoraPack`, whole models in :class:`llm_unmask.pack.FullPack`), and so are AdamW's moments
of it. A member's state is its slice of each of them, plus what all members share (update count, scheduler,
random streams, the optimizer's param-group values), written into its own run folder
(``<id>.tmp/pack_state.step<N>.pt``). Stacking the slices of any set of runs that stopped at the same update gives
back a pack state that :func:`llm_unmask.pipeline.restore_state` loads. So a search continues only the runs it
promoted, re-packed, and a sweep killed mid-pack resumes whichever of its runs are left, in packs of any size.

A re-packed run continues with the new pack's one random stream (dropout draws), as any packed run does.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path

import torch

from .errors import RunError
from .io import load_plain_state

log = logging.getLogger(__name__)

PACK_STATE = "pack_state.step{step}.pt"
_PATTERN = re.compile(r"pack_state\.step(\d+)\.pt$")
SHARED = ("step", "loss", "scheduler", "torch_rng", "cuda_rng", "python_rng")


def saved_step(run_tmp: Path) -> int | None:
    """The update a run stopped at inside a pack (its pack state's step), or None if it has none."""
    steps = [int(m.group(1)) for p in Path(run_tmp).glob("pack_state.step*.pt") if (m := _PATTERN.search(p.name))]
    return max(steps) if steps else None


def state_path(run_tmp: Path) -> Path | None:
    step = saved_step(run_tmp)
    return None if step is None else Path(run_tmp) / PACK_STATE.format(step=step)


def _trainable(model) -> list[tuple[str, torch.nn.Parameter]]:
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


def _optimizer_names(model, optimizer) -> list[str]:
    """Parameter names in the order the optimizer's state_dict numbers them."""
    names = {id(p): n for n, p in model.named_parameters()}
    return [names[id(p)] for group in optimizer.param_groups for p in group["params"]]


def split_state(model, loop, k: int, seconds: Sequence[float]) -> list[dict]:
    """Run by run: its slice of every stacked weight and optimizer moment, the shared loop values, and the
    compute seconds it has had so far (its share of the pack's time)."""
    sd = loop.state_dict()
    names = _optimizer_names(model, loop.optimizer)
    params = dict(_trainable(model))
    shared = {key: sd[key] for key in SHARED if key in sd}
    shared["param_groups"] = sd["optimizer"]["param_groups"]
    out = []
    for i in range(k):
        optim = {}
        for idx, entry in sd["optimizer"]["state"].items():
            shape = params[names[idx]].shape
            optim[names[idx]] = {
                "sliced": {key: v[i].detach().cpu().clone() for key, v in entry.items()
                           if torch.is_tensor(v) and v.shape == shape},
                "shared": {key: v for key, v in entry.items() if not (torch.is_tensor(v) and v.shape == shape)}}
        out.append({"names": names, "loop": shared, "seconds": float(seconds[i]), "optim": optim,
                    "weights": {n: p.detach()[i].cpu().clone() for n, p in params.items()}})
    return out


def join_states(states: Sequence[dict], model, loop, where: Path) -> dict:
    """The pack state of these runs' saved slices (in member order), as :func:`restore_state` reads it."""
    names = _optimizer_names(model, loop.optimizer)
    if any(s["names"] != names for s in states):
        raise RunError(f"{where}: a saved pack state does not fit this pack's model; delete it to start over")
    optim = {}
    for idx, name in enumerate(names):
        entries = [s["optim"].get(name) for s in states]
        if all(e is not None for e in entries):
            optim[idx] = {**entries[0]["shared"],
                          **{key: torch.stack([e["sliced"][key] for e in entries]) for key in entries[0]["sliced"]}}
    loop_state = {**states[0]["loop"], "tokens_seen": 0, "elapsed": 0.0,
                  "optimizer": {"state": optim, "param_groups": states[0]["loop"]["param_groups"]}}
    weights = {n: torch.stack([s["weights"][n] for s in states]) for n in states[0]["weights"]}
    return {"weights": weights, "loop": loop_state}


def save_member_states(tmps: Sequence[Path], states: Sequence[dict]) -> None:
    """Each run's state into its own folder, atomically; older steps' files are removed after."""
    for tmp, state in zip(tmps, states):
        path = Path(tmp) / PACK_STATE.format(step=state["loop"]["step"])
        part = path.with_name(path.name + ".part")
        torch.save(state, part)
        os.replace(part, path)
        for old in Path(tmp).glob("pack_state.step*.pt"):
            if old != path:
                old.unlink(missing_ok=True)


def load_member_states(tmps: Sequence[Path]) -> list[dict] | None:
    """Every member's saved state, if all have one at the same update; else None (the pack starts afresh)."""
    paths = [state_path(t) for t in tmps]
    if any(p is None for p in paths):
        if any(p is not None for p in paths):
            log.warning("some runs of this pack have no saved state: the pack starts all of them afresh")
        return None
    steps = {saved_step(t) for t in tmps}
    if len(steps) != 1:
        log.warning("the runs of this pack stopped at different updates (%s): they start afresh", sorted(steps))
        return None
    return [load_plain_state(p) for p in paths]


def clear_member_state(tmp: Path) -> None:
    for old in Path(tmp).glob("pack_state.step*.pt"):
        old.unlink(missing_ok=True)
