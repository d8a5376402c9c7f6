"""Each fine-tuning variant attends as it claims, loaded exactly as finetune-checkpoints loads it.

decoder-mask: changing token j never changes outputs at positions i < j. decoder-unmask and encoder: it
does. Padding never changes the real tokens' outputs. (transformers 5.x has shipped *ForCausalLM classes
that attended to future tokens; this test is the guard.) Also: wrong-architecture checkpoints are refused.
"""

from __future__ import annotations

import pytest
import torch

from llm_unmask.config import RunConfig
from llm_unmask.errors import RunError
from llm_unmask.model import build_model
from llm_unmask.tokenization import train_tokenizer
from scaling.checkpoints import check_checkpoint_arch, checkpoint_kind
from scaling.config import load_pretrain_config
from scaling.corpus import generated_lines
from scaling.finetune import VARIANTS, variant_config
from scaling.pretrain import build_lm

LABELS = ("O", "B-X", "I-X")
SEQ = 12


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    """Random (never trained) tiny MLM and CLM checkpoints, saved as pre-training saves them."""
    out = tmp_path_factory.mktemp("random-ckpts")
    tok = train_tokenizer(list(generated_lines(100, seed=5)), vocab_size=300)
    paths = {}
    for arch in ("encoder", "decoder"):
        cfg = load_pretrain_config(None, [f"arch={arch}", "model.num_layers=2", "model.hidden_size=32",
                                          "model.num_heads=4", "model.ffn_size=64", "model.max_positions=40",
                                          "model.vocab_size=300", "block_size=32"])
        model = build_lm(cfg, tok)
        paths[arch] = out / arch
        model.save_pretrained(str(paths[arch]))
        tok.save_pretrained(str(paths[arch]))
    return paths


def load_variant(ckpts, variant):
    arch = VARIANTS[variant][0]
    cfg = variant_config(RunConfig(), variant, ckpts[arch])
    built = build_model(cfg.model, LABELS, seed=0)
    assert type(built.model).__name__ == "RobertaForTokenClassification"
    return built.model.eval(), built.tokenizer


def logits(model, ids, mask=None):
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=torch.ones_like(ids) if mask is None else mask).logits


def _ids(tok):
    g = torch.Generator().manual_seed(0)
    body = torch.randint(10, 290, (1, SEQ), generator=g)
    body[0, 0] = tok.bos_token_id
    return body


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_future_tokens(ckpts, variant):
    model, tok = load_variant(ckpts, variant)
    ids = _ids(tok)
    base = logits(model, ids)
    for j in (1, SEQ // 2, SEQ - 1):
        changed = ids.clone()
        changed[0, j] = 7 if ids[0, j] != 7 else 8
        diff = (logits(model, changed) - base).abs().amax(-1)[0]
        assert diff[j] > 1e-4  # the changed position itself always moves
        if variant == "decoder-mask":
            assert diff[:j].max() < 1e-6, f"decoder-mask saw the future at j={j}: {diff[:j]}"
        else:
            assert diff[:j].max() > 1e-4, f"{variant} did not see token {j} from the left: {diff[:j]}"


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_padding_never_changes_real_tokens(ckpts, variant):
    model, tok = load_variant(ckpts, variant)
    ids = _ids(tok)
    ref = logits(model, ids)
    n_pad = 5
    for fill in (tok.pad_token_id, 50):  # what sits under a padded position must not matter either
        padded = torch.cat([ids, torch.full((1, n_pad), fill)], dim=1)
        mask = torch.cat([torch.ones_like(ids), torch.zeros(1, n_pad, dtype=torch.long)], dim=1)
        got = logits(model, padded, mask)[:, :SEQ]
        assert torch.allclose(got, ref, atol=1e-5), (got - ref).abs().max()
    # a batch: a shorter sequence padded next to a longer one gives the same outputs as alone
    short = ids[:, : SEQ - 4]
    batch = torch.full((2, SEQ), tok.pad_token_id)
    batch[0] = ids[0]
    batch[1, : SEQ - 4] = short[0]
    mask = (batch != tok.pad_token_id).long()
    mask[0] = 1
    got = logits(model, batch, mask)
    assert torch.allclose(got[1, : SEQ - 4], logits(model, short)[0], atol=1e-5)
    assert torch.allclose(got[0], ref[0], atol=1e-5)


def test_wrong_architecture_is_refused(ckpts):
    assert checkpoint_kind(ckpts["encoder"])[0] == "encoder" and checkpoint_kind(ckpts["decoder"])[0] == "decoder"
    with pytest.raises(RunError, match=r"encoder.*decoder-mask needs a causal \(CLM\) decoder.*RobertaForMaskedLM"):
        check_checkpoint_arch(ckpts["encoder"], "decoder", "decoder-mask")
    with pytest.raises(RunError, match="variant encoder needs an MLM encoder"):
        check_checkpoint_arch(ckpts["decoder"], "encoder", "encoder")
