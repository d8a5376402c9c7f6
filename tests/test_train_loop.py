"""TrainLoop details that matter on a GPU but are checkable on the CPU."""

import torch

from llm_unmask.config import TrainConfig
from llm_unmask.model import qlora_load_kwargs
from llm_unmask.train import LoopState, TrainLoop


def test_loss_is_read_lazily_from_a_tensor():
    st = LoopState()
    t = torch.tensor(0.25)
    st.loss = t
    assert st.loss_tensor is t  # callbacks can sum losses without a host sync
    assert st.loss == 0.25 and isinstance(st.loss, float)


def test_loop_reports_loss_and_non_padding_tokens():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)

    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = model

        def forward(self, x, attention_mask, labels):
            return type("O", (), {"loss": ((self.lin(x).squeeze(-1) - labels) ** 2 * attention_mask).mean()})()

    x = torch.randn(8, 4, 3)
    mask = torch.tensor([[1, 1, 0, 0]] * 8)
    loop = TrainLoop(M(), TrainConfig(batch_size=4, max_steps=3, grad_accum=1, precision="fp32", log_every=1),
                     n_examples=8, seed=0, progress=False,
                     make_batch=lambda idx: {"x": x[idx], "attention_mask": mask[idx], "labels": torch.zeros(len(idx), 4)})
    st = loop.run()
    assert st.step == 3 and st.tokens_seen == 3 * 4 * 2  # only the unmasked positions count
    assert isinstance(st.loss, float) and st.loss > 0
    # the epoch's batch order is computed once and reused within the epoch
    assert loop._epoch_batches(0) is loop._epoch_batches(0)


def test_4bit_weights_load_onto_this_process_gpu(monkeypatch):
    """Loaded without a device map, bitsandbytes leaves Linear4bit unquantized and the first forward fails."""
    monkeypatch.setenv("LOCAL_RANK", "3")
    kw = qlora_load_kwargs()
    assert kw["device_map"] == {"": 3}
    q = kw["quantization_config"]
    assert q.load_in_4bit and q.bnb_4bit_quant_type == "nf4" and q.bnb_4bit_use_double_quant
    assert q.bnb_4bit_compute_dtype == torch.bfloat16 and kw["dtype"] == torch.bfloat16


def test_adamw_is_fused_where_torch_has_the_kernel_and_updates_like_the_default():
    from llm_unmask.train import build_optimizer, fused_adamw_available

    cfg = TrainConfig(lr=1e-2, weight_decay=0.1)
    models = []
    for fused in (None, False):
        torch.manual_seed(0)
        models.append(torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.LayerNorm(7), torch.nn.Linear(7, 2)))
        opt = build_optimizer(models[-1], cfg, device_type="cpu", fused=fused)
        assert bool(opt.defaults["fused"]) is (fused is None)  # auto -> fused on the CPU; False -> torch's default
        assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]
        x = torch.randn(4, 5, generator=torch.Generator().manual_seed(1))
        for _ in range(3):
            opt.zero_grad()
            models[-1](x).pow(2).sum().backward()
            opt.step()
    for a, b in zip(models[0].parameters(), models[1].parameters()):
        assert torch.allclose(a, b, atol=1e-6) and not torch.equal(a, torch.zeros_like(a))
    # a device without the kernel, or integer tensors, keep the per-tensor implementation
    assert not fused_adamw_available(list(models[0].parameters()), "no-such-device")
    assert not fused_adamw_available([torch.zeros(3, dtype=torch.long)], "cpu")
