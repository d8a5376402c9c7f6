"""Per-row unmask plans (the mask mechanism of packs): every row of a batch, or every model under vmap, gets
its own unmask configuration, and equals the model unmasked by apply_unmask for that configuration alone."""

from __future__ import annotations

import pytest
import torch

from llm_unmask.errors import UnmaskError
from llm_unmask.tiny import tiny_model
from llm_unmask.unmask import (
    FLAGS_KWARG,
    apply_row_unmask,
    apply_unmask,
    current_plan,
    remove_unmask,
    unmask_flags,
)

SMALL = {"hidden": 32, "vocab_size": 128, "num_layers": 4, "heads": 4, "kv_heads": 2}
SPECS = ["0000", "1111", "0110", "layers:1,3"]
ARCHS = ["llama", "gemma2", "roberta-decoder"]


def make(arch, attn="sdpa"):
    return tiny_model(arch, attn_implementation=attn, **SMALL)


def rows_batch(n=4, seq=9, pad=0):
    """n rows of different lengths, right-padded (row 0 unpadded)."""
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, 100, (n, seq), generator=g)
    am = torch.ones(n, seq, dtype=torch.long)
    for i in range(1, n):
        am[i, seq - i:] = 0
        ids[i, seq - i:] = pad
    return ids, am


def hidden(model, ids, am, **kw):
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=am, output_hidden_states=True, **kw).hidden_states


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_each_row_equals_its_own_plan_alone(arch, attn):
    model = make(arch, attn)
    ids, am = rows_batch()
    flags = unmask_flags(SPECS, 4)
    assert flags.tolist()[3] == [False, True, False, True]
    apply_row_unmask(model)
    assert current_plan(model).spec == "per-row"
    packed = hidden(model, ids, am, **{FLAGS_KWARG: flags})
    for row, spec in enumerate(SPECS):
        apply_unmask(model, spec)
        n = int(am[row].sum())
        alone = hidden(model, ids[row:row + 1, :n], None)  # the row alone, no padding at all
        for depth, (p, a) in enumerate(zip(packed, alone)):
            torch.testing.assert_close(p[row, :n], a[0], atol=1e-5, rtol=0, msg=f"{spec} depth {depth}")
        apply_row_unmask(model)


def test_all_zero_rows_are_the_stock_model_and_padding_never_leaks():
    model = make("llama")
    ids, am = rows_batch()
    stock = hidden(model, ids, am)
    apply_row_unmask(model)
    got = hidden(model, ids, am, **{FLAGS_KWARG: torch.zeros(4, 4)})
    for s, g in zip(stock, got):
        torch.testing.assert_close(g * am[..., None], s * am[..., None], atol=1e-6, rtol=0)
    # changing what sits in the padding (ids) changes no real token
    other = ids.masked_fill(am == 0, 77)
    flags = unmask_flags(SPECS, 4)
    a, b = hidden(model, ids, am, **{FLAGS_KWARG: flags}), hidden(model, other, am, **{FLAGS_KWARG: flags})
    for x, y in zip(a, b):
        torch.testing.assert_close(x * am[..., None], y * am[..., None], atol=1e-6, rtol=0)


def test_one_rows_flags_never_change_another_row():
    """Teeth: flip row 1's plan; row 0 (and rows 2, 3) must not move, row 1 must."""
    model = make("llama")
    apply_row_unmask(model)
    ids, am = rows_batch()
    flags = unmask_flags(SPECS, 4)
    before = hidden(model, ids, am, **{FLAGS_KWARG: flags})[-1]
    flipped = flags.clone()
    flipped[1] = ~flipped[1]
    after = hidden(model, ids, am, **{FLAGS_KWARG: flipped})[-1]
    for row in (0, 2, 3):
        assert torch.equal(before[row], after[row]), row
    assert not torch.allclose(before[1, :8], after[1, :8], atol=1e-4)


def test_flags_under_vmap_pick_each_models_mask():
    """Under torch.func.vmap over models, flags are one (layers,) row per model, inputs shared."""
    from torch.func import functional_call, stack_module_state, vmap

    models = [make("llama") for _ in SPECS]
    for i, m in enumerate(models):  # different weights per model
        torch.manual_seed(i)
        for p in m.parameters():
            p.data.add_(0.01 * torch.randn_like(p))
    ids, am = rows_batch()
    params, buffers = stack_module_state(models)
    shell = make("llama")
    apply_row_unmask(shell)

    def one(p, b, f):
        return functional_call(shell, (p, b), (), {"input_ids": ids, "attention_mask": am, FLAGS_KWARG: f})[0]

    with torch.no_grad():
        out = vmap(one)(params, buffers, unmask_flags(SPECS, 4))
    for m, spec, got in zip(models, SPECS, out):
        apply_unmask(m, spec)
        with torch.no_grad():
            want = m(input_ids=ids, attention_mask=am)[0]
        torch.testing.assert_close(got * am[..., None], want * am[..., None], atol=1e-5, rtol=0)


def test_bad_flags_and_flash_are_refused():
    model = make("llama")
    apply_row_unmask(model)
    ids, am = rows_batch()
    with pytest.raises(UnmaskError, match="without unmask_flags"):
        model(input_ids=ids, attention_mask=am)
    with pytest.raises(UnmaskError, match=r"shape \(3, 4\)"):
        model(input_ids=ids, attention_mask=am, **{FLAGS_KWARG: torch.zeros(3, 4)})
    remove_unmask(model)
    assert current_plan(model) is None and not model._forward_pre_hooks
    model.config._attn_implementation = "flash_attention_2"
    with pytest.raises(UnmaskError, match="sdpa or eager"):
        apply_row_unmask(model)
