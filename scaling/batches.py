"""Pre-training batches: raw blocks read on the host (prefetchable), MLM masking on the device."""

from __future__ import annotations

import torch


class BatchMaker:
    """``indices -> {input_ids, labels}`` of raw blocks, read from the memory-mapped Arrow file (safe to run
    in the prefetch thread: it draws no random numbers). CLM labels are the inputs (the loss shifts them);
    MLM masking happens on the device, in the training thread (:class:`DeviceMasker`)."""

    def __init__(self, blocks):
        self.blocks = blocks

    def __call__(self, indices) -> dict:
        ids = torch.from_numpy(self.blocks[list(indices)]["input_ids"]).long()
        return {"input_ids": ids, "labels": ids}


class DeviceMasker:
    """MLM masking of a device batch: 15% of the non-special tokens (80% <mask>, 10% random, 10% kept).

    The same draws, in the same order, as transformers' ``DataCollatorForLanguageModeling.torch_mask_tokens``
    (so on the CPU the masks are identical to the collator's), but made on the batch's device from its RNG,
    which the training loop saves and restores."""

    def __init__(self, tokenizer, mlm_probability: float = 0.15, mask_replace_prob: float = 0.8,
                 random_replace_prob: float = 0.1):
        self.p, self.p_mask, self.p_random = mlm_probability, mask_replace_prob, random_replace_prob
        self.mask_id, self.n_tokens = tokenizer.mask_token_id, len(tokenizer)
        self.special = torch.tensor(sorted(set(tokenizer.all_special_ids)), dtype=torch.long)
        self._special_on: dict = {}

    def __call__(self, batch: dict) -> dict:
        ids = batch["input_ids"]
        dev = ids.device
        special = self._special_on.get(dev)
        if special is None:  # copied to the device once, not per batch (a pageable copy would wait)
            special = self._special_on[dev] = self.special.to(dev)
        inputs, labels = ids.clone(), ids.clone()
        prob = torch.full(labels.shape, self.p, device=dev)
        prob.masked_fill_(torch.isin(ids, special), 0.0)
        chosen = torch.bernoulli(prob).bool()
        labels.masked_fill_(~chosen, -100)
        replaced = torch.bernoulli(torch.full(labels.shape, self.p_mask, device=dev)).bool() & chosen
        inputs.masked_fill_(replaced, self.mask_id)
        scaled = self.p_random / (1 - self.p_mask)
        randomized = torch.bernoulli(torch.full(labels.shape, scaled, device=dev)).bool() & chosen & ~replaced
        words = torch.randint(self.n_tokens, labels.shape, dtype=torch.long, device=dev)
        inputs = torch.where(randomized, words, inputs)
        return {"input_ids": inputs, "labels": labels}
