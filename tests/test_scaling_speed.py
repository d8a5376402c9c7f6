"""Pre-training at the speed of the hardware, checked on the CPU: the loss without the logits equals the
plain loss, the padded vocabulary never leaks, the loader prefetches without changing a batch, no host sync
per step, bf16 keeps fp32 master weights, and the new path's loss curve equals the old one's."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from transformers import RobertaConfig, RobertaForCausalLM, RobertaForMaskedLM

from llm_unmask.errors import RunError
from llm_unmask.prefetch import Prefetcher
from scaling.config import PretrainConfig, load_pretrain_config
from scaling.lm_loss import (
    IGNORE,
    ChunkedLinearCrossEntropy,
    FusedLMLoss,
    linear_cross_entropy,
    mlm_capacity,
    padded_width,
)
from scaling.pretrain import check_dropped, load_data, make_loop, use_compile

VOCAB = 301  # not a multiple of 64: the loss pads it to 320


def tiny_lm(arch: str, dropout: float = 0.0, seed: int = 0):
    cfg = RobertaConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=66, type_vocab_size=1, pad_token_id=1,
                        is_decoder=arch == "decoder", hidden_dropout_prob=dropout,
                        attention_probs_dropout_prob=dropout)
    torch.manual_seed(seed)
    return (RobertaForCausalLM if arch == "decoder" else RobertaForMaskedLM)(cfg)


def batch_for(arch: str, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, VOCAB, (4, 32), generator=g)
    labels = ids.clone()
    if arch == "encoder":
        labels[torch.rand(ids.shape, generator=g) >= 0.15] = IGNORE
    return ids, labels


def loss_and_grads(model, arch, ids, labels, fused):
    model.zero_grad(set_to_none=True)
    loss = FusedLMLoss(model, arch, fused=fused)(ids, labels).loss
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("arch", ["decoder", "encoder"])
def test_fused_loss_and_gradients_equal_the_plain_loss(arch):
    """fp32: loss within 1e-6 relative, every gradient within 1e-6 absolute (they are ~1e-2 .. 1e0)."""
    model = tiny_lm(arch)
    ids, labels = batch_for(arch)
    plain, g_plain = loss_and_grads(model, arch, ids, labels, fused=False)
    fused, g_fused = loss_and_grads(model, arch, ids, labels, fused=True)
    assert fused.item() == pytest.approx(plain.item(), rel=1e-6)
    assert g_plain.keys() == g_fused.keys()
    for name in g_plain:
        assert torch.allclose(g_fused[name], g_plain[name], rtol=0, atol=1e-6), name
    # bf16 autocast: both paths compute the matmuls in bf16; the losses agree within 1%
    with torch.autocast("cpu", dtype=torch.bfloat16):
        plain16 = FusedLMLoss(model, arch, fused=False)(ids, labels).loss
        fused16 = FusedLMLoss(model, arch, fused=True)(ids, labels).loss
    assert fused16.item() == pytest.approx(plain16.item(), rel=1e-2)
    assert fused16.item() == pytest.approx(plain.item(), rel=1e-2)


@pytest.mark.parametrize("chunk_rows", [1, 7, 1000])
def test_padded_vocabulary_is_never_predicted_nor_in_the_loss(chunk_rows):
    """The loss pads 301 rows to 320 for its matmuls; it equals cross-entropy over the 301 real logits
    (padded rows add no probability mass), ignores rows labelled -100, and only real rows get gradients."""
    assert padded_width(VOCAB) == 320 and padded_width(50265) == 50304 and padded_width(64) == 64
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(20, 16, generator=g, requires_grad=True)
    weight = torch.randn(VOCAB, 16, generator=g, requires_grad=True)
    bias = torch.randn(VOCAB, generator=g, requires_grad=True)
    labels = torch.randint(0, VOCAB, (20,), generator=g)
    labels[::3] = IGNORE
    labels[1] = VOCAB - 1  # the last real row
    ours = linear_cross_entropy(hidden, weight, bias, labels, kernel="chunked", chunk_rows=chunk_rows)
    grads = torch.autograd.grad(ours, (hidden, weight, bias))
    ref = F.cross_entropy(hidden @ weight.t() + bias, labels, ignore_index=IGNORE)
    ref_grads = torch.autograd.grad(ref, (hidden, weight, bias))
    assert ours.item() == pytest.approx(ref.item(), rel=1e-6)
    for a, b in zip(grads, ref_grads):
        assert a.shape == b.shape and torch.allclose(a, b, rtol=0, atol=1e-6)
    # every row ignored: loss 0 and no gradient, not NaN
    none = ChunkedLinearCrossEntropy.apply(hidden, weight, bias, torch.full((20,), IGNORE), 8)
    assert none.item() == 0.0


def test_mlm_head_runs_only_at_masked_positions():
    model = tiny_lm("encoder")
    ids, labels = batch_for("encoder")
    rows = []
    model.lm_head.dense.register_forward_hook(lambda m, args, out: rows.append(args[0].shape[0]))
    objective = FusedLMLoss(model, "encoder")
    objective(ids, labels)
    cap = mlm_capacity(ids.numel(), 0.15)
    assert rows == [cap] and cap < ids.numel() and cap % 64 == 0
    assert cap >= (labels != IGNORE).sum() and int(objective.dropped_labels) == 0
    check_dropped(objective)
    # more labelled positions than the capacity: counted, and the run stops with an error when read
    everything = ids.clone()
    objective(ids, everything)
    assert int(objective.dropped_labels) == ids.numel() - cap
    with pytest.raises(RunError, match="capacity"):
        check_dropped(objective)
    assert mlm_capacity(512 * 64, 0.15) == 5504  # 16.8% of the positions at the paper's shape


@pytest.mark.parametrize("arch", ["decoder", "encoder"])
def test_training_forward_builds_no_kv_cache(arch):
    for fused in (True, False):
        model = tiny_lm(arch)
        seen = []

        def record(module, args, kwargs, out, seen=seen):
            seen.append((kwargs.get("use_cache"), out.past_key_values))

        model.roberta.register_forward_hook(record, with_kwargs=True)
        FusedLMLoss(model, arch, fused=fused)(*batch_for(arch))
        if arch == "decoder" or fused:
            assert seen == [(False, None)]
        else:  # RobertaForMaskedLM has no cache at all
            assert seen[0][1] is None


def test_compile_is_on_by_default_only_on_cuda_and_traces_without_breaks():
    cfg = PretrainConfig()
    assert cfg.compile and use_compile(cfg, "cuda") and not use_compile(cfg, "cpu")
    cfg.compile = False
    assert not use_compile(cfg, "cuda")
    import torch._dynamo

    torch._dynamo.reset()
    for arch in ("decoder", "encoder"):
        objective = FusedLMLoss(tiny_lm(arch), arch)
        compiled = torch.compile(objective, backend="aot_eager", fullgraph=True)  # no C++ toolchain needed
        ids, labels = batch_for(arch)
        assert compiled(ids, labels).loss.item() == pytest.approx(objective(ids, labels).loss.item(), rel=1e-6)


def test_prefetcher_yields_the_plan_in_order_ahead_of_time_and_raises_errors():
    made = []

    def make(idx):
        made.append(idx[0])
        return {"input_ids": torch.tensor([idx]), "attention_mask": torch.ones(1, len(idx) - 1)}

    plan = [[i, i + 1, i + 2] for i in range(10)]
    feed = Prefetcher(make, plan, depth=3)
    it = iter(feed)
    first = next(it)
    assert first[0] == [0, 1, 2] and first[2] == 2 and torch.equal(first[1]["input_ids"], torch.tensor([[0, 1, 2]]))
    import time

    for _ in range(1000):  # up to 10 s: a loaded CI machine may schedule the thread late
        if len(made) >= 4:
            break
        time.sleep(0.01)
    assert len(made) >= 4  # the thread ran ahead while we held the first batch
    assert [x[0] for x in it] == plan[1:]
    feed.close()

    def broken(idx):
        raise ValueError("bad block")

    feed = Prefetcher(broken, plan, depth=2)
    with pytest.raises(ValueError, match="bad block"):
        list(feed)
    feed.close()
    stopped = Prefetcher(make, ([i] for i in range(10**6)), depth=2)
    stopped.close()  # an endless plan: close() ends the thread


TINY = ["train.log_every=1000000000", "train.max_steps=8"]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("speed")
    cfg = load_pretrain_config("configs/scaling/tiny.yaml", ["corpus_size=600"])
    _, tok, blocks = load_data(cfg, out)
    return tok, blocks


def tiny_cfg(arch, *extra):
    return load_pretrain_config("configs/scaling/tiny.yaml", [f"arch={arch}", "corpus_size=600", *TINY, *extra])


def curve(arch, tok, blocks, *extra, steps=None, prefetch=None):
    """Per-update losses of the pre-training loop on the tiny config."""
    from scaling.pretrain import build_lm

    cfg = tiny_cfg(arch, *extra)
    loop, objective = make_loop(cfg, build_lm(cfg, tok), tok, blocks, progress=False)
    if prefetch is not None:
        loop.prefetch = prefetch
    torch.manual_seed(cfg.seed)
    losses = []
    loop.run(callback=lambda st: losses.append(st.loss_tensor.clone()), stop_at=steps)
    return torch.stack(losses), loop, objective


class HostSyncs(TorchDispatchMode):
    """Counts the ops that make the host wait for the device (a tensor's value read into Python)."""

    SYNC = {"_local_scalar_dense", "nonzero", "masked_select", "item", "is_nonzero", "equal"}

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.__name__.split(".")[0] in self.SYNC:
            self.count += 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("arch", ["decoder", "encoder"])
def test_no_host_sync_per_step_and_prefetching_changes_nothing(arch, tiny_data):
    from scaling.pretrain import build_lm

    tok, blocks = tiny_data
    cfg = tiny_cfg(arch)
    loop, _ = make_loop(cfg, build_lm(cfg, tok), tok, blocks, progress=False)
    assert loop.prefetch > 0
    counts = []
    with HostSyncs() as mode:
        loop.run(callback=lambda st: counts.append(mode.count))
    # syncs only at the last update (it logs); none in the seven before it
    assert counts[:-1] == [0] * (len(counts) - 1) and counts[-1] > 0
    # the same run without the prefetch thread: the very same losses and weights
    ahead, loop_a, _ = curve(arch, tok, blocks)
    inline, loop_b, _ = curve(arch, tok, blocks, prefetch=0)
    assert loop_a.prefetch > 0 and torch.equal(ahead, inline)
    assert all(torch.equal(a, b) for a, b in zip(loop_a.model.parameters(), loop_b.model.parameters()))


def test_bf16_autocast_keeps_fp32_master_weights(tiny_data):
    from accelerate.state import AcceleratorState

    tok, blocks = tiny_data
    fp32, _, _ = curve("decoder", tok, blocks, steps=4)
    AcceleratorState._reset_state(True)  # accelerate keeps one precision per process
    try:
        bf16, loop, _ = curve("decoder", tok, blocks, "train.precision=bf16", steps=4)
        assert loop.acc.mixed_precision == "bf16"
    finally:
        AcceleratorState._reset_state(True)
    params = list(loop.model.parameters())
    assert all(p.dtype == torch.float32 for p in params)
    state = loop.optimizer.state_dict()["state"]
    assert all(s["exp_avg"].dtype == torch.float32 and s["exp_avg_sq"].dtype == torch.float32 for s in state.values())
    assert torch.allclose(bf16, fp32, rtol=2e-2, atol=0)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["decoder", "encoder"])
def test_new_path_loss_curve_equals_the_old_one_over_200_steps(arch, tiny_data):
    """Tiny config (micro-batches of 8 blocks to keep CI short), 200 updates, dropout on: the fused loss
    (new) against the model's own loss over full logits (old), with the same masks and dropout draws.
    Tolerance: 1e-5 relative at every update (measured: 2e-7)."""
    tok, blocks = tiny_data
    new, _, _ = curve(arch, tok, blocks, "train.max_steps=200", "train.batch_size=8")
    old, _, _ = curve(arch, tok, blocks, "train.max_steps=200", "train.batch_size=8", "fused_loss=false")
    assert len(new) == len(old) == 200
    print(f"{arch}: max relative difference over 200 updates {((new - old).abs() / old).max().item():.2e}")
    assert torch.allclose(new, old, rtol=1e-5, atol=0), (new - old).abs().max()
    assert new[-20:].mean() < new[:20].mean() - 0.5  # and it is learning


def test_checkpoints_load_as_the_real_vocabulary_roberta(tmp_path, tiny_data):
    """Nothing of the loss's padding reaches the model: its checkpoints are the plain RoBERTa shape."""
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

    from scaling.checkpoints import list_checkpoints
    from scaling.pretrain import pretrain

    base = ["corpus_size=600", "train.max_steps=2", "checkpoints_per_epoch=1"]
    for arch, auto in (("encoder", AutoModelForMaskedLM), ("decoder", AutoModelForCausalLM)):
        cfg = load_pretrain_config("configs/scaling/tiny.yaml", [f"arch={arch}", *base])
        pretrain(cfg, tmp_path, progress=False)
        last = list_checkpoints(tmp_path / arch)[-1].path
        model = auto.from_pretrained(last)
        assert model.config.vocab_size == cfg.model.vocab_size == 1000
        assert model.roberta.embeddings.word_embeddings.weight.shape == (1000, 64)
        assert model.lm_head.bias.shape == (1000,)
        assert model.lm_head.decoder.weight.data_ptr() == model.roberta.embeddings.word_embeddings.weight.data_ptr()


def test_checkpoint_save_returns_at_once_and_writes_the_snapshot_taken_then(tmp_path, monkeypatch):
    """The writer saves what the weights and optimizer state were at save(), although training has changed
    them in place before the background write ran; one write is in flight at a time; a folder appears only
    when whole."""
    import threading
    import time
    from types import SimpleNamespace

    from safetensors.torch import load_file
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    import scaling.checkpoint_writer as cw
    from scaling.checkpoints import LOOP_STATE, list_checkpoints

    model = tiny_lm("decoder")
    exp_avg = torch.arange(6.0)
    loop = SimpleNamespace(state_dict=lambda: {"optimizer": {"state": {0: {"exp_avg": exp_avg}}}, "step": 3,
                                               "torch_rng": torch.get_rng_state(), "cuda_rng": None,
                                               "python_rng": None})
    acc = SimpleNamespace(num_processes=1, is_main_process=True)
    release, entered = threading.Event(), threading.Event()
    real = cw.ck.checkpoints_root

    def held(arch_dir):  # the writer thread's first step: hold it there, before it writes anything
        if threading.current_thread().name.startswith("write-"):
            entered.set()
            release.wait(60)
        return real(arch_dir)

    monkeypatch.setattr(cw.ck, "checkpoints_root", held)
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"a": 0, "<unk>": 1}, "<unk>")))
    writer = cw.CheckpointWriter(model, tok, tmp_path, "last", acc)
    expected = []
    for index in (1, 2):
        release.clear()
        entered.clear()
        expected.append(({k: v.clone() for k, v in model.state_dict().items()}, exp_avg.clone()))
        writer.save(index, {"index": index, "step": 3 * index}, loop)
        assert entered.wait(60) and writer.thread.is_alive()  # save() returned; the write is in flight
        assert [c.index for c in list_checkpoints(tmp_path)] == list(range(1, index))  # not visible yet
        with torch.no_grad():  # training goes on and updates everything in place
            for p in model.parameters():
                p.add_(1.0)
            exp_avg.add_(100.0)
        if index == 1:  # the next save waits for this write
            nxt = threading.Thread(target=writer.save, args=(9, {"index": 9}, loop))
            nxt.start()
            time.sleep(0.3)
            assert nxt.is_alive()
            release.set()
            nxt.join(60)
            writer.wait()
            (tmp_path / "checkpoints" / "ckpt-009").rename(tmp_path / "extra")
        release.set()
        writer.wait()
    by_index = {c.index: c for c in list_checkpoints(tmp_path)}
    for index, (weights, moment) in zip((1, 2), expected):
        saved = load_file(str(by_index[index].path / "model.safetensors"))
        assert saved and all(torch.equal(saved[k], weights[k]) for k in saved), index
    state = torch.load(by_index[2].path / LOOP_STATE, weights_only=False)
    assert torch.equal(state["optimizer"]["state"][0]["exp_avg"], expected[1][1])
    assert not (by_index[1].path / LOOP_STATE).exists()  # keep_loop_state: last
