"""Batches: dynamic padding to the longest sentence, seeded order, optional length bucketing."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from tqdm.auto import tqdm

from .align import IGNORE


def collate(input_ids: Sequence[Sequence[int]], labels: Sequence[Sequence[int]] | None, pad_id: int) -> dict:
    """Right-pad to the longest sequence in the batch (paper: pad to the longest example)."""
    width = max(len(x) for x in input_ids)
    n = len(input_ids)
    ids = torch.full((n, width), pad_id, dtype=torch.long)
    mask = torch.zeros((n, width), dtype=torch.long)
    for i, seq in enumerate(input_ids):
        ids[i, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
        mask[i, : len(seq)] = 1
    batch = {"input_ids": ids, "attention_mask": mask}
    if labels is not None:
        lab = torch.full((n, width), IGNORE, dtype=torch.long)
        for i, seq in enumerate(labels):
            lab[i, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
        batch["labels"] = lab
    return batch


def epoch_order(n: int, batch_size: int, seed: int, epoch: int, lengths: Sequence[int] | None = None,
                drop_last: bool = False) -> list[list[int]]:
    """The batches of one epoch, a pure function of (seed, epoch): resuming mid-epoch replays it exactly.

    With ``lengths``, sentences are shuffled, cut into pools of 50 batches, sorted by length inside a pool and
    batched, and the batches shuffled again: similar lengths share a batch (less padding) yet order stays random.
    """
    g = torch.Generator().manual_seed(seed * 100003 + epoch)
    perm = torch.randperm(n, generator=g).tolist()
    if lengths is not None:
        pool = batch_size * 50
        chunks = []
        for start in range(0, n, pool):
            part = sorted(perm[start : start + pool], key=lambda i: lengths[i])
            chunks.extend(part[j : j + batch_size] for j in range(0, len(part), batch_size))
        order = torch.randperm(len(chunks), generator=g).tolist()
        batches = [chunks[i] for i in order]
    else:
        batches = [perm[j : j + batch_size] for j in range(0, n, batch_size)]
    if drop_last and batches and len(batches[-1]) < batch_size:
        batches = batches[:-1]
    return batches


def eval_batches(encoded, batch_size: int, progress: bool = False) -> Iterator[list[int]]:
    """Index batches sorted by length (minimal padding); results are put back in the original order."""
    order = sorted(range(len(encoded)), key=lambda i: len(encoded.input_ids[i]))
    chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    yield from tqdm(chunks, desc="evaluate", leave=False, disable=not progress)
