"""Baselines the paper compares unmasked decoders with, run into the same results store.

* Encoder sequence labelers (RoBERTa-base/large): ``llm_unmask train --config
  configs/baselines/roberta-base.yaml`` -- the SL pipeline itself, with an encoder (no unmasking).
* Instruction-tuned causal LMs (Llama2-7B, Mistral-7B): :mod:`.prompts` (the paper's prompts),
  :mod:`.parse` (responses back to IOB2 tags), :mod:`.it` (training and evaluation),
  ``llm_unmask it-train`` / ``it-eval`` (:mod:`.cli`).
"""
