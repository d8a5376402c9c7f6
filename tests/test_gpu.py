"""GPU paths no CPU test reaches, on tiny random models: the 4-bit NF4 load with paged 8-bit AdamW and bf16
autocast, and unmasking in bf16 under eager, SDPA's fused kernels and flash_attention_2.

Marked ``gpu`` and skipped without CUDA (CI has none); ``bash scripts/gpu_checks.sh`` runs them all at once.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch

from llm_unmask.tiny import tiny_config, tiny_model
from llm_unmask.unmask import apply_unmask, find_decoder_layers

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

ATTNS = ["eager", "sdpa", "flash_attention_2"]
ARCHS = ["llama", "mistral", "qwen2"]
BF16 = dict(atol=2e-2, rtol=2e-2)  # a few bf16 ulps; a leak through padding moves values by far more


def _needs(attn):
    if attn == "flash_attention_2":
        pytest.importorskip("flash_attn", reason="flash-attn is not installed")


def _model(arch, attn):
    m = tiny_model(arch, head="base", attn_implementation=attn, hidden=64, heads=4, kv_heads=2, num_layers=4,
                   vocab_size=128)
    return m.to("cuda", torch.bfloat16).eval()


def _bidirectional_reference(model):
    """transformers' own bidirectional model: padding-only masks, non-causal kernels, no hooks of ours."""
    backbone, _ = find_decoder_layers(model)
    backbone.config.is_causal = False
    for m in model.modules():
        if hasattr(m, "is_causal"):
            m.is_causal = False
    return model


def _hidden(model, ids, am=None, pos=None):
    kw = {} if pos is None else {"position_ids": pos.cuda()}
    with torch.no_grad():
        return model(input_ids=ids.cuda(), attention_mask=None if am is None else am.cuda(), **kw).last_hidden_state


def _ids(n, seq, seed=0):
    return torch.randint(3, 100, (n, seq), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("attn", ATTNS)
@pytest.mark.parametrize("arch", ARCHS)
def test_0000_is_stock_and_1111_is_transformers_bidirectional_in_bf16(arch, attn):
    _needs(attn)
    m = _model(arch, attn)
    ids = _ids(2, 12)
    stock = _hidden(m, ids)
    apply_unmask(m, "0000")
    assert torch.equal(_hidden(m, ids), stock)
    ref = _bidirectional_reference(copy.deepcopy(m))
    apply_unmask(m, "1111")
    got, want = _hidden(m, ids), _hidden(ref, ids)
    torch.testing.assert_close(got, want, **BF16)
    assert not torch.allclose(got, stock, **BF16)  # unmasking did change something


@pytest.mark.parametrize("attn", ATTNS)
@pytest.mark.parametrize("spec", ["0110", "1111"])
def test_padding_never_changes_real_tokens(attn, spec):
    _needs(attn)
    m = _model("llama", attn)
    apply_unmask(m, spec)
    real = _ids(1, 9, seed=1)
    alone = _hidden(m, real)[0]
    pad = m.config.pad_token_id if m.config.pad_token_id is not None else 0
    ids = torch.stack([torch.cat([torch.full((3,), pad), real[0]]), torch.cat([real[0], torch.full((3,), pad)])])
    am = torch.stack([torch.cat([torch.zeros(3), torch.ones(9)]), torch.cat([torch.ones(9), torch.zeros(3)])]).long()
    pos = torch.stack([torch.cat([torch.zeros(3, dtype=torch.long), torch.arange(9)]), torch.arange(12)])
    out = _hidden(m, ids, am, pos)  # real tokens keep positions 0-8 in both rows: only padding differs
    torch.testing.assert_close(out[0, 3:], alone, **BF16)  # left-padded row
    torch.testing.assert_close(out[1, :9], alone, **BF16)  # right-padded row


def test_4bit_nf4_model_trains_with_paged_8bit_adamw_in_bf16(tmp_path, corpus_texts):
    bnb = pytest.importorskip("bitsandbytes")
    from transformers import LlamaForCausalLM

    from llm_unmask.cli import resolve_config
    from llm_unmask.config import load_config
    from llm_unmask.model import build_model
    from llm_unmask.pipeline import run_sl
    from llm_unmask.tokenization import train_tokenizer
    from llm_unmask.train import build_optimizer

    tok = train_tokenizer(corpus_texts, vocab_size=300, kind="byte-level")
    base = tmp_path / "base"
    cfg = tiny_config("llama", vocab_size=len(tok), hidden=64, heads=4, kv_heads=2, num_layers=4,
                      pad_token_id=tok.pad_token_id)
    LlamaForCausalLM(cfg).save_pretrained(base)
    tok.save_pretrained(base)
    run_cfg = load_config(resolve_config("paper"), [
        f"model.name={base}", "model.unmask=0110", "data.task=synthetic-right", "data.options.n_train=64",
        "data.options.n_validation=16", "data.options.n_test=16", "train.max_steps=3", "train.batch_size=8",
    ])
    built = build_model(run_cfg.model, ["O", "B-X", "I-X"], seed=0)
    assert built.quantized and any(type(mod).__name__ == "Linear4bit" for mod in built.model.modules())
    opt = build_optimizer(built.model, run_cfg.train, device_type="cuda")
    assert isinstance(opt, bnb.optim.PagedAdamW8bit)
    run = run_sl(run_cfg, tmp_path / "runs", progress=False)
    import json

    m = json.loads((run / "metrics.json").read_text())
    assert m["quantized"] is True and m["train_steps"] == 3 and math.isfinite(m["final_loss"])
    assert m["unmask_layers"] == [1, 2] and 0.0 <= m["splits"]["test"]["f1"] <= 1.0
