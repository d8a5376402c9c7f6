"""Every paper config, loaded as the CLI loads it, pinned to the paper's optimization settings.

Sec. 4 / App. A.1 (SL and the encoder baselines): paged 8-bit AdamW (beta 0.9/0.95, eps 1e-5, wd 0.1),
cosine schedule, no warm-up named, clipping 1.0, gradient accumulation 4, batch 16, lr 2e-4, 5 epochs,
gradient checkpointing, max length 128, QLoRA r=64 alpha=16 dropout 0.1 on the query/value projections.
IT (Sec. 4.2): all of that except the batch (packs: 1024 tokens, 512 for Rest14) and 10 epochs for
Rest14. Small-scale study (Sec. 5.4, App. A.2): AdamW with the same betas/eps/wd/clipping, cosine,
accumulation 8, batch 64, lr 2e-4, 10 epochs, bf16; every checkpoint fine-tuned in full, 5 epochs, batch 16.
A silent change to any of these fails here.
"""

import pytest

from llm_unmask.baselines.it import resolve_it_config
from llm_unmask.cli import CONFIG_DIR, resolve_config
from llm_unmask.config import load_config
from scaling.config import load_pretrain_config

ADAMW = {"betas": [0.9, 0.95], "eps": 1e-5, "weight_decay": 0.1, "max_grad_norm": 1.0, "scheduler": "cosine",
         "warmup_ratio": 0.0, "lr": 2e-4}
PAPER_SL = {**ADAMW, "optimizer": "paged_adamw_8bit", "grad_accum": 4, "batch_size": 16, "epochs": 5,
            "gradient_checkpointing": True, "max_steps": None}
LORA = {"enabled": True, "r": 64, "alpha": 16, "dropout": 0.1}


def _train(cfg_train) -> dict:
    return {k: getattr(cfg_train, k) for k in PAPER_SL}


@pytest.mark.parametrize("path", ["llm_unmask/paper.yaml", "llm_unmask/mistral-7b.yaml",
                                  "baselines/roberta-base.yaml", "baselines/roberta-large.yaml"])
def test_sequence_labeling_configs(path):
    cfg = load_config(resolve_config(str(CONFIG_DIR / path)))
    assert _train(cfg.train) == PAPER_SL
    assert cfg.data.max_length == 128 and cfg.model.quantization == "auto" and cfg.train.precision == "auto"
    assert {k: getattr(cfg.model.lora, k) for k in LORA} == LORA
    assert sorted(cfg.model.lora.target_modules) in (["q_proj", "v_proj"], ["query", "value"])
    assert cfg.eval_splits == ["validation", "test"] and cfg.model.unmask is None


@pytest.mark.parametrize("name", ["it-llama2-7b", "it-mistral-7b"])
@pytest.mark.parametrize("task, pack, epochs", [("conll03-ner", 1024, 5), ("rest14-atepol", 512, 10)])
def test_instruction_tuning_configs(name, task, pack, epochs):
    cfg = resolve_it_config(load_config(CONFIG_DIR / "baselines" / f"{name}.yaml", [f"data.task={task}"]))
    want = {**PAPER_SL, "epochs": epochs, "batch_size": 2048 // pack}
    assert _train(cfg.train) == want
    assert cfg.data.max_length == pack and cfg.decoding == "model-default"
    assert {k: getattr(cfg.model.lora, k) for k in LORA} == LORA


def test_small_scale_study_config():
    cfg = load_pretrain_config(CONFIG_DIR / "scaling" / "paper.yaml")
    pre = {k: getattr(cfg.train, k) for k in (*ADAMW, "optimizer", "grad_accum", "batch_size", "epochs", "max_steps")}
    assert pre == {**ADAMW, "optimizer": "adamw", "grad_accum": 8, "batch_size": 64, "epochs": 10, "max_steps": None}
    assert (cfg.model.num_layers, cfg.model.hidden_size, cfg.block_size, cfg.mlm_probability) == (4, 768, 512, 0.15)
    assert cfg.checkpoints_per_epoch == 5 and cfg.train.precision == "auto"
    for ft in (cfg.finetune, load_pretrain_config(CONFIG_DIR / "scaling" / "finetune.yaml").finetune):
        got = {k: getattr(ft.train, k) for k in (*ADAMW, "optimizer", "grad_accum", "batch_size", "epochs")}
        assert got == {**ADAMW, "optimizer": "adamw", "grad_accum": 1, "batch_size": 16, "epochs": 5}
        assert ft.model.lora.enabled is False and ft.data.max_length == 128
