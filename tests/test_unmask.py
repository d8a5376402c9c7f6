"""Layer-group unmasking on tiny random models of every supported decoder architecture.

Expectations are exact: stock behaviour when nothing is unmasked, transformers' own bidirectional
behaviour when everything is, and token-level influence / padding properties in between.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from llm_unmask.errors import LookingRightError, UnmaskError
from llm_unmask.tiny import DECODER_ARCHS, tiny_config, tiny_model
from llm_unmask.unmask import (
    UnmaskPlan,
    apply_unmask,
    current_plan,
    find_decoder_layers,
    layer_groups,
    parse_layer_list,
    parse_unmask,
    remove_unmask,
)

SMALL = {"hidden": 32, "vocab_size": 128, "num_layers": 4, "heads": 4, "kv_heads": 2}
SEQ = 8


def make(arch, attn="sdpa", head="base", **kw):
    return tiny_model(arch, head=head, attn_implementation=attn, **{**SMALL, **kw})


def bidirectional_reference(model):
    """The same model made fully bidirectional by transformers itself, without any of our hooks."""
    backbone, _ = find_decoder_layers(model)
    backbone.config.is_causal = False  # masking_utils then builds padding-only masks
    for m in model.modules():
        if hasattr(m, "is_causal"):
            m.is_causal = False  # and fused kernels stop being causal
    return model


def ids_for(n, seq=SEQ, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(3, 100, (n, seq), generator=g)  # ids 0-2 are pad/bos/eos in the presets


def pad_id(model):
    return model.config.pad_token_id if model.config.pad_token_id is not None else 0


def padded_batch(model, real=6, left=2, right=2, seed=0):
    """Row 0 left-padded, row 1 right-padded, both holding the same `real` tokens."""
    tokens = ids_for(1, real, seed)[0]
    p = pad_id(model)
    ids = torch.stack(
        [
            torch.cat([torch.full((left,), p), tokens]),
            torch.cat([tokens, torch.full((right,), p)]),
        ]
    )
    am = torch.stack(
        [
            torch.cat([torch.zeros(left), torch.ones(real)]),
            torch.cat([torch.ones(real), torch.zeros(right)]),
        ]
    ).long()
    return tokens, ids, am


def run(model, ids, am=None, **kw):
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=am, output_hidden_states=True, **kw)


def causal_flags(model):
    _, layers = find_decoder_layers(model)
    return [[m.is_causal for m in layer.modules() if hasattr(m, "is_causal")] for layer in layers]


# ----------------------------------------------------------------------------- stock and reference


@pytest.mark.parametrize("arch", DECODER_ARCHS)
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("spec", ["0000", "none", None])
def test_nothing_unmasked_is_exactly_stock(arch, attn, spec):
    m = make(arch, attn)
    _, ids, am = padded_batch(m)
    stock = [run(m, ids, am), run(m, ids_for(2))]
    plan = apply_unmask(m, spec)
    assert plan.layers == () and plan.spec == ("0000" if spec == "0000" else "none")
    for ref, out in zip(stock, [run(m, ids, am), run(m, ids_for(2))]):
        assert torch.equal(ref.last_hidden_state, out.last_hidden_state)
        assert all(torch.equal(a, b) for a, b in zip(ref.hidden_states, out.hidden_states))


@pytest.mark.parametrize("arch", DECODER_ARCHS)
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_all_unmasked_equals_bidirectional_reference(arch, attn):
    m = make(arch, attn)
    ref = bidirectional_reference(make(arch, attn))
    assert apply_unmask(m, "1111").layers == (0, 1, 2, 3)
    _, ids, am = padded_batch(m)
    for x, mask in [(ids, am), (ids_for(2), None), (ids_for(2), torch.ones(2, SEQ, dtype=torch.long))]:
        got, want = run(m, x, mask), run(ref, x, mask)
        torch.testing.assert_close(got.last_hidden_state, want.last_hidden_state, atol=1e-5, rtol=0)
        for a, b in zip(got.hidden_states, want.hidden_states):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    stock = run(make(arch, attn), ids, am).last_hidden_state
    assert not torch.allclose(stock, run(m, ids, am).last_hidden_state, atol=1e-3)


# ------------------------------------------------------------------------------------- influence


@pytest.mark.parametrize("arch", DECODER_ARCHS)
def test_influence_flows_right_to_left_only_from_the_unmasked_layer(arch):
    m = make(arch)
    j = 5
    a = ids_for(1)
    b = a.clone()
    b[0, j] = a[0, j] % 90 + 4  # a different real token
    for k in range(4):
        apply_unmask(m, "".join("1" if i == k else "0" for i in range(4)))
        ha, hb = run(m, a).hidden_states, run(m, b).hidden_states  # [embeddings, layer 0 out, ...]
        for depth in range(k + 1):  # embeddings and layers before k: positions < j cannot see j
            assert torch.equal(ha[depth][:, :j], hb[depth][:, :j]), (k, depth)
        change = (ha[k + 1][:, :j] - hb[k + 1][:, :j]).abs().amax(-1)
        assert bool((change > 1e-6).all()), (k, change)
    apply_unmask(m, "0000")
    ha, hb = run(m, a).hidden_states, run(m, b).hidden_states
    assert all(torch.equal(x[:, :j], y[:, :j]) for x, y in zip(ha, hb))


# --------------------------------------------------------------------------------------- padding


@pytest.mark.parametrize("arch", DECODER_ARCHS)
@pytest.mark.parametrize("spec", ["0000", "0110", "1111"])
def test_padding_never_changes_real_tokens(arch, spec):
    m = make(arch)
    apply_unmask(m, spec)
    tokens, ids, am = padded_batch(m, real=6, left=2, right=2)
    alone = run(m, tokens[None])
    batch = run(m, ids, am)
    for alone_h, batch_h in zip(alone.hidden_states, batch.hidden_states):
        torch.testing.assert_close(batch_h[0, 2:], alone_h[0], atol=1e-5, rtol=0)  # left padded
        torch.testing.assert_close(batch_h[1, :6], alone_h[0], atol=1e-5, rtol=0)  # right padded


@pytest.mark.parametrize("arch", DECODER_ARCHS)
def test_padding_is_never_attended_and_unmasked_layers_look_right(arch):
    m = make(arch, "eager")
    plan = apply_unmask(m, "0110")
    _, ids, am = padded_batch(m)
    attentions = run(m, ids, am, output_attentions=True).attentions
    assert len(attentions) == 4
    real = am.bool()
    for layer, w in enumerate(attentions):  # (batch, heads, q, k)
        for b in range(2):
            rows = w[b][:, real[b]]  # real queries
            assert torch.equal(rows[..., ~real[b]], torch.zeros_like(rows[..., ~real[b]])), (layer, b)
            rr = rows[..., real[b]]  # real queries x real keys
            future = torch.triu(torch.ones(rr.shape[-2:], dtype=torch.bool), 1)
            if plan.unmasked[layer]:
                assert bool((rr[..., future] > 0).all()), (layer, b)
            else:
                assert bool((rr[..., future] == 0).all()), (layer, b)


@pytest.mark.parametrize("arch", [a for a in DECODER_ARCHS if a != "roberta-decoder"])
@pytest.mark.parametrize("spec", ["0000", "0110", "1111"])
def test_packed_sequences_stay_separate(arch, spec):
    # Packing = several sequences in one row, no 2D mask, position_ids restarting at 0. transformers keeps
    # causal layers inside each sequence (only with use_cache=False); unmasked layers must not leak either.
    # (RobertaModel never passes position_ids to its mask builder, so stock RoBERTa cannot pack.)
    m = make(arch)
    apply_unmask(m, spec)
    a, b = ids_for(1, 3, seed=1), ids_for(1, 5, seed=2)
    pos = torch.tensor([[0, 1, 2, 0, 1, 2, 3, 4]])
    with torch.no_grad():
        packed = m(input_ids=torch.cat([a, b], 1), position_ids=pos, use_cache=False).last_hidden_state
        alone = torch.cat([m(input_ids=a).last_hidden_state, m(input_ids=b).last_hidden_state], 1)
    torch.testing.assert_close(packed, alone, atol=1e-5, rtol=0)


# ---------------------------------------------------------------------------------- sdpa vs eager


@pytest.mark.parametrize("arch", DECODER_ARCHS)
@pytest.mark.parametrize("spec", ["0101", "1111"])
@pytest.mark.parametrize("padded", [False, True])
def test_sdpa_and_eager_agree(arch, spec, padded):
    s, e = make(arch, "sdpa"), make(arch, "eager")
    apply_unmask(s, spec)
    apply_unmask(e, spec)
    if padded:
        _, ids, am = padded_batch(s)
    else:
        ids, am = ids_for(2), None
    hs, he = run(s, ids, am).hidden_states, run(e, ids, am).hidden_states
    real = am.bool() if am is not None else torch.ones(ids.shape, dtype=torch.bool)
    for a, b in zip(hs, he):  # fully masked padding rows differ by kernel convention; real ones must not
        torch.testing.assert_close(a[real], b[real], atol=1e-5, rtol=0)


# -------------------------------------------------------------------------------------- fused path


@pytest.fixture
def sdpa_calls(monkeypatch):
    calls = []
    real = torch.nn.functional.scaled_dot_product_attention

    def spy(*args, **kwargs):
        calls.append((kwargs.get("is_causal", False), kwargs.get("attn_mask")))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
    return calls


@pytest.mark.parametrize("arch", DECODER_ARCHS)
def test_fused_kernel_without_padding(arch, sdpa_calls):
    m = make(arch)
    plan = apply_unmask(m, "0101")
    for mask in (None, torch.ones(2, SEQ, dtype=torch.long)):
        sdpa_calls.clear()
        run(m, ids_for(2), mask)
        assert len(sdpa_calls) == 4
        for unmasked, (is_causal, attn_mask) in zip(plan.unmasked, sdpa_calls):
            assert attn_mask is None  # no materialised mask: fused kernel
            assert is_causal is (not unmasked)
    assert [all(f) for f in causal_flags(m)] == [True, False, True, False]
    assert [any(f) for f in causal_flags(m)] == [True, False, True, False]


@pytest.mark.parametrize("arch", DECODER_ARCHS)
def test_padded_unmasked_layers_get_padding_only_mask(arch, sdpa_calls):
    m = make(arch)
    plan = apply_unmask(m, "0101")
    _, ids, am = padded_batch(m)
    run(m, ids, am)
    assert len(sdpa_calls) == 4
    keep = am.bool()[:, None, None, :].expand(2, 1, SEQ, SEQ)
    for unmasked, (is_causal, attn_mask) in zip(plan.unmasked, sdpa_calls):
        assert is_causal is False and attn_mask is not None
        allowed = attn_mask if attn_mask.dtype == torch.bool else attn_mask == 0
        if unmasked:
            assert torch.equal(allowed, keep)  # every query sees every real key, no triangle
        else:
            assert not bool(allowed[1, 0, 0, 1])  # causal triangle between real tokens


# ------------------------------------------------------------------------------------- groups


def test_layer_groups_first_groups_take_the_remainder():
    assert [len(g) for g in layer_groups(30, 4)] == [8, 8, 7, 7]
    assert [len(g) for g in layer_groups(32, 4)] == [8, 8, 8, 8]
    assert layer_groups(30, 4)[2] == range(16, 23)
    assert [list(g) for g in layer_groups(5, 5)] == [[0], [1], [2], [3], [4]]
    assert layer_groups(7, 1) == [range(7)]
    for n, k in [(4, 0), (4, 5)]:
        with pytest.raises(UnmaskError, match="groups"):
            layer_groups(n, k)


def test_group_codes_map_to_layers():
    assert parse_unmask("0110", 30).layers == tuple(range(8, 23))
    assert parse_unmask("1000", 30).layers == tuple(range(8))
    assert parse_unmask("01", 30).layers == tuple(range(15, 30))
    assert parse_unmask("0101", 4).layers == (1, 3)
    plan = parse_unmask("0110", 4)
    assert plan == UnmaskPlan((False, True, True, False), "0110") and str(plan) == "0110"
    assert parse_unmask("all", 3) == UnmaskPlan((True, True, True), "all")
    assert parse_unmask("all-layers", 3) == UnmaskPlan((True, True, True), "all")
    assert parse_unmask(" NONE ", 3).spec == "none"
    assert parse_unmask("layers:16-31", 32).layers == tuple(range(16, 32))
    assert parse_unmask("layers:7,5-6,0,3", 8).spec == "layers:0,3,5-7"
    assert parse_unmask([3, 0, 3], 4) == UnmaskPlan((True, False, False, True), "layers:0,3")
    assert parse_unmask((), 4).spec == "none"
    assert parse_unmask(plan, 4) is plan
    assert parse_layer_list("0,3,5-7") == (0, 3, 5, 6, 7)
    assert parse_layer_list("16-31") == tuple(range(16, 32))
    assert parse_layer_list("layers: 2 , 1") == (1, 2)


def test_thirty_layer_model_code():
    m = tiny_model("llama", num_layers=30, hidden=32, vocab_size=64)
    apply_unmask(m, "0110")
    assert [not any(f) for f in causal_flags(m)] == [8 <= i <= 22 for i in range(30)]
    assert current_plan(m).layers == tuple(range(8, 23))


# ----------------------------------------------------------------------------- wrappers and peft


class _Tagger(nn.Module):
    """A custom labeling model that merely holds a decoder."""

    def __init__(self, decoder):
        super().__init__()
        self.decoder = decoder
        self.head = nn.Linear(decoder.config.hidden_size, 5)

    def forward(self, input_ids, attention_mask=None):
        return self.head(self.decoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state)


def test_heads_and_custom_wrappers_find_the_backbone():
    from transformers import LlamaForTokenClassification

    cfg = tiny_config("llama", **SMALL)
    cfg.num_labels = 5
    for model in (
        make("llama", head="causal-lm"),
        LlamaForTokenClassification(cfg).eval(),
        _Tagger(make("llama")),
    ):
        backbone, layers = find_decoder_layers(model)
        assert type(backbone).__name__ == "LlamaModel" and len(layers) == 4
        apply_unmask(model, "1111")
        assert current_plan(model).spec == "1111" and current_plan(backbone).spec == "1111"
        _, ids, am = padded_batch(backbone)
        with torch.no_grad():
            got = model(input_ids=ids, attention_mask=am)
            remove_unmask(model)
            bidirectional_reference(model)
            want = model(input_ids=ids, attention_mask=am)
        got, want = (x if torch.is_tensor(x) else x.logits for x in (got, want))
        torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def test_roberta_backbone_is_the_model_not_its_encoder():
    backbone, layers = find_decoder_layers(make("roberta-decoder", head="causal-lm"))
    assert type(backbone).__name__ == "RobertaModel" and len(layers) == 4


# peft itself still reads transformers' deprecated `is_gradient_checkpointing`
_PEFT_WARNING = "ignore:`is_gradient_checkpointing` is deprecated:FutureWarning"


def _lora(model):
    from peft import LoraConfig, get_peft_model

    pm = get_peft_model(
        model, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj"])
    )
    torch.manual_seed(1)
    for name, p in pm.named_parameters():
        if "lora_B" in name:  # LoRA starts as a no-op; make it matter
            nn.init.normal_(p, std=0.2)
    return pm.eval()


@pytest.mark.filterwarnings(_PEFT_WARNING)
def test_peft_wrapped_model():
    pm = _lora(make("llama", head="causal-lm"))
    assert type(find_decoder_layers(pm)[0]).__name__ == "LlamaModel"
    apply_unmask(pm, "1111")
    assert current_plan(pm).spec == "1111"
    _, ids, am = padded_batch(pm)
    with torch.no_grad():
        got = pm(input_ids=ids, attention_mask=am).logits
        remove_unmask(pm)
        lora_stock = pm(input_ids=ids, attention_mask=am).logits
        with pm.disable_adapter():
            plain = pm(input_ids=ids, attention_mask=am).logits
        bidirectional_reference(pm)
        want = pm(input_ids=ids, attention_mask=am).logits
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    assert not torch.allclose(lora_stock, plain, atol=1e-4)  # the adapter is live
    assert not torch.allclose(got, lora_stock, atol=1e-4)


def _grads(model, ids, am):
    labels = ids.masked_fill(am == 0, -100)
    model.zero_grad(set_to_none=True)
    loss = model(input_ids=ids, attention_mask=am, labels=labels).loss
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.filterwarnings(_PEFT_WARNING)
@pytest.mark.parametrize("arch", ["llama", "gemma3", "roberta-decoder", "peft-llama"])
def test_gradient_checkpointing_matches_plain_backward(arch):
    if arch == "peft-llama":
        m = _lora(make("llama", head="causal-lm"))
    else:
        m = make(arch, head="causal-lm")
    _, ids, am = padded_batch(m)
    m.train()
    stock_loss, _stock_grads = _grads(m, ids, am)
    apply_unmask(m, "0110")
    loss, grads = _grads(m, ids, am)
    m.activation_checkpointing_enable({"use_reentrant": False})
    _, layers = find_decoder_layers(m)
    assert all(layer.gradient_checkpointing for layer in layers)
    ck_loss, ck_grads = _grads(m, ids, am)
    assert not torch.allclose(loss, stock_loss)
    assert grads.keys() == ck_grads.keys() and grads
    torch.testing.assert_close(ck_loss, loss, atol=1e-6, rtol=0)
    for name in grads:
        torch.testing.assert_close(ck_grads[name], grads[name], atol=1e-6, rtol=1e-5, msg=name)


def test_gradient_checkpointing_reentrant():
    m = make("llama", head="causal-lm")
    _, ids, am = padded_batch(m)
    m.train()
    apply_unmask(m, "0110")
    loss, grads = _grads(m, ids, am)
    m.activation_checkpointing_enable({"use_reentrant": True})
    ck_loss, ck_grads = _grads(m, ids, am)
    torch.testing.assert_close(ck_loss, loss, atol=1e-6, rtol=0)
    for name in grads:
        torch.testing.assert_close(ck_grads[name], grads[name], atol=1e-6, rtol=1e-5, msg=name)


# --------------------------------------------------------------------------- re-apply and remove


def _hook_counts(model):
    return [(len(x._forward_pre_hooks), len(x._forward_hooks)) for x in model.modules()]


@pytest.mark.parametrize("arch", ["llama", "gemma3", "roberta-decoder"])
def test_reapply_and_remove_restore_stock(arch):
    m = make(arch, sliding_window=3) if arch == "gemma3" else make(arch)
    _, ids, am = padded_batch(m)
    run(m, ids, am)  # let transformers install its own lazy hooks first
    hooks, flags = _hook_counts(m), causal_flags(m)
    windows = [getattr(x, "sliding_window", None) for x in m.modules()]
    stock = run(m, ids, am)

    apply_unmask(m, "1111")
    once = run(m, ids, am).last_hidden_state
    counts_once = _hook_counts(m)
    run_plan = apply_unmask(m, "1111")
    assert _hook_counts(m) == counts_once  # replaced, not stacked
    assert torch.equal(run(m, ids, am).last_hidden_state, once)
    assert run_plan.spec == "1111" and current_plan(m) == run_plan

    apply_unmask(m, "0000")
    assert current_plan(m).spec == "0000"
    assert _hook_counts(m) == hooks and causal_flags(m) == flags
    out = run(m, ids, am)
    assert torch.equal(out.last_hidden_state, stock.last_hidden_state)

    apply_unmask(m, "0110")
    assert causal_flags(m) != flags
    remove_unmask(m)
    assert current_plan(m) is None
    assert _hook_counts(m) == hooks and causal_flags(m) == flags
    assert [getattr(x, "sliding_window", None) for x in m.modules()] == windows
    assert torch.equal(run(m, ids, am).last_hidden_state, stock.last_hidden_state)
    remove_unmask(m)  # removing twice is harmless


def test_deepcopy_of_an_unmasked_model_is_independent():
    m = make("llama")
    apply_unmask(m, "0110")
    _, ids, am = padded_batch(m)
    want = run(m, ids, am).last_hidden_state
    twin = copy.deepcopy(m)
    assert current_plan(twin).spec == "0110"
    torch.testing.assert_close(run(twin, ids, am).last_hidden_state, want, atol=0, rtol=0)
    remove_unmask(twin)
    assert all(all(f) for f in causal_flags(twin))
    assert current_plan(m).spec == "0110"
    assert torch.equal(run(m, ids, am).last_hidden_state, want)


# ------------------------------------------------------------------------------ sliding windows


WINDOWED = {
    "mistral": {},
    "gemma2": {},
    "gemma3": {},
    "qwen2": {"use_sliding_window": True, "max_window_layers": 1},
}


@pytest.mark.parametrize("arch", list(WINDOWED))
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_unmasked_layers_ignore_sliding_windows(arch, attn):
    narrow = make(arch, attn, sliding_window=2, **WINDOWED[arch])
    wide = make(arch, attn, sliding_window=512, **WINDOWED[arch])
    _, ids, am = padded_batch(narrow)
    assert not torch.allclose(run(narrow, ids, am).last_hidden_state, run(wide, ids, am).last_hidden_state)
    apply_unmask(narrow, "1111")
    assert all(
        getattr(x, "sliding_window", None) is None for x in narrow.modules() if hasattr(x, "is_causal")
    )
    got = run(narrow, ids, am).last_hidden_state
    want = run(bidirectional_reference(wide), ids, am).last_hidden_state
    real = am.bool()
    torch.testing.assert_close(got[real], want[real], atol=1e-5, rtol=0)


def test_flash_with_a_config_level_window_is_refused():
    # Mistral hands config.sliding_window straight to flash kernels, which would keep windowing an
    # unmasked layer; we refuse before any kernel runs (so no flash install is needed to test this).
    m = make("mistral", sliding_window=2)
    m.config._attn_implementation_internal = "flash_attention_2"
    apply_unmask(m, "1000")
    with pytest.raises(UnmaskError, match="sliding_window=2.*sdpa or eager"):
        m(input_ids=ids_for(1))


# ----------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "spec, match",
    [
        ("01a1", r"'01a1'.*'a'.*0/1"),
        ("01101", r"5 groups.*only 4 decoder layers"),
        ("layers:0-99", r"out of range.*4 decoder layers.*0-3"),
        ("layers:3-1", r"runs backwards"),
        ("layers:1-", r"malformed"),
        ("layers:x", r"malformed"),
        ("layers:1,,2", r"malformed"),
        ("layers:", r"malformed"),
        ("layers:-1", r"malformed"),
        ("", r"empty"),
        ("sometimes", r"'sometimes'.*none.*all.*layers:"),
        (3.5, r"float"),
        ([True, False], r"integer"),
        (UnmaskPlan((True,), "1"), r"1 layers but this model has 4"),
    ],
)
def test_bad_specs(spec, match):
    with pytest.raises(UnmaskError, match=match):
        parse_unmask(spec, 4)


def test_bad_spec_keeps_the_current_plan():
    m = make("llama")
    apply_unmask(m, "0110")
    with pytest.raises(UnmaskError):
        apply_unmask(m, "01a1")
    assert current_plan(m).spec == "0110"
    assert [all(f) for f in causal_flags(m)] == [True, False, False, True]


def test_unmask_error_is_user_facing():
    assert issubclass(UnmaskError, LookingRightError)


@pytest.mark.parametrize(
    "model, match",
    [
        (lambda: make("roberta-encoder"), r"RobertaModel.*encoder"),
        (lambda: make("bert"), r"BertModel.*encoder"),
        (lambda: nn.Linear(4, 4), r"Linear cannot be unmasked"),
        (lambda: nn.Sequential(nn.Linear(4, 4)), r"Sequential cannot be unmasked"),
        (lambda: "llama", r"str"),
    ],
)
def test_unsupported_models(model, match):
    model = model()
    with pytest.raises(UnmaskError, match=match):
        apply_unmask(model, "1111")
    if isinstance(model, nn.Module):
        assert current_plan(model) is None


def _falcon(attn):
    from transformers import FalconConfig, FalconModel

    cfg = FalconConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                       attn_implementation=attn)
    return FalconModel(cfg)


def _gpt2():
    from transformers import GPT2Config, GPT2Model

    return GPT2Model(GPT2Config(vocab_size=64, n_embd=32, n_layer=2, n_head=4, bos_token_id=0, eos_token_id=0))


@pytest.mark.parametrize("model, model_type", [(lambda: _falcon("eager"), "falcon"), (lambda: _falcon("sdpa"), "falcon"),
                                               (_gpt2, "gpt2")])
def test_architectures_outside_the_supported_list_are_refused(model, model_type):
    # Falcon under eager attention used to crash with a TypeError in its forward; GPT-2 ran unchecked
    m = model()
    with pytest.raises(UnmaskError, match=rf"model type '{model_type}'.*not supported"):
        apply_unmask(m, "11")
    assert current_plan(m) is None
    out = m(input_ids=torch.tensor([[1, 2, 3]])).last_hidden_state  # left stock
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("arg", ["past_key_values", "cache"])
@pytest.mark.parametrize("call", ["model", "backbone"])
def test_four_d_mask_and_filled_cache_are_refused(arg, call):
    # transformers 5.24 renamed the backbone's past_key_values to cache: the guard must see either name
    m = make("llama", head="causal-lm")
    ids = ids_for(1)
    with torch.no_grad():
        out = m(input_ids=ids, use_cache=True)
    cache = getattr(out, "past_key_values", None) or getattr(out, "cache", None)
    assert cache is not None and cache.get_seq_length() == SEQ
    apply_unmask(m, "0110")
    with pytest.raises(UnmaskError, match="4D tensor.*2D"):
        m(input_ids=ids, attention_mask=torch.ones(1, 1, SEQ, SEQ, dtype=torch.bool))
    target = m if call == "model" else find_decoder_layers(m)[0]
    with pytest.raises(UnmaskError, match="non-empty KV cache"):
        target(input_ids=ids[:, :1], **{arg: cache})
    # an empty cache (what use_cache=True creates) is fine, and the context is cleared after errors
    out = m(input_ids=ids, use_cache=True).logits
    assert torch.isfinite(out).all()


def test_layer_called_outside_the_model_is_refused():
    m = make("llama")
    apply_unmask(m, "1111")
    _, layers = find_decoder_layers(m)
    with pytest.raises(UnmaskError, match="outside LlamaModel.forward"):
        layers[0](torch.zeros(1, 3, 32), attention_mask=None)
