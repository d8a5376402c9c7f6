"""Label new text with a finished run: rebuild the base, load the saved adapter + head, same unmask spec."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from .checks import check_safetensors
from .config import RunConfig, _from_dict
from .errors import DataError, RunError

_WORD = re.compile(r"\w+(?:[-'.]\w+)*|[^\w\s]", re.UNICODE)


@dataclass(frozen=True)
class _Plain:
    tokens: tuple[str, ...]
    tags: tuple[str, ...] = ()


def read_input(path: Path, fmt: str = "auto") -> list[_Plain]:
    if not path.is_file():
        raise DataError("input file not found", path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text (byte {exc.start}); give a text or CoNLL file", path) from None
    if "\x00" in text:
        raise DataError("not text (it holds NUL bytes: a binary file?); give a text or CoNLL file", path)
    lines = text.splitlines()
    if fmt == "auto":
        body = [l for l in lines if l.strip()]
        fmt = "conll" if body and sum(1 for l in lines if not l.strip()) > 0 and all(
            len(l.split()) <= 4 for l in body[:50]) and any(len(l.split()) == 1 or "\t" in l for l in body[:50]) \
            else "text"
    sents: list[_Plain] = []
    if fmt == "text":
        for line in lines:
            if line.strip():
                sents.append(_Plain(tuple(_WORD.findall(line))))
        return sents
    cur: list[str] = []
    for line in lines:
        if not line.strip():
            if cur:
                sents.append(_Plain(tuple(cur)))
            cur = []
        elif not line.startswith("-DOCSTART-"):
            cur.append(line.split()[0])
    if cur:
        sents.append(_Plain(tuple(cur)))
    return sents


def load_run_model(run_dir: Path):
    """(model, tokenizer, labels) of a finished run, ready for inference."""
    from transformers import AutoModelForTokenClassification

    from .model import build_model
    from .tokenization import load_tokenizer
    from .unmask import apply_unmask

    cfg_path, model_dir = run_dir / "config.yaml", run_dir / "model"
    if not cfg_path.is_file():
        raise RunError(f"{run_dir}: not a run directory (no config.yaml)")
    if not model_dir.is_dir() or not any(model_dir.iterdir()):
        raise RunError(f"{run_dir}: the run has no saved adapter/model (model/ is missing); was it finished?")
    cfg: RunConfig = _from_dict(RunConfig, yaml.safe_load(cfg_path.read_text()))
    check_safetensors(model_dir)
    tok = load_tokenizer(model_dir)
    if (model_dir / "adapter_config.json").is_file():
        import json

        from peft import PeftModel

        labels = json.loads((run_dir / "metrics.json").read_text()).get("labels") if (run_dir / "metrics.json").is_file() else None
        if not labels:
            raise RunError(f"{run_dir}: metrics.json lacks the label list needed to rebuild the head")
        base_cfg = cfg.model
        base_cfg.lora.enabled = False
        built = build_model(base_cfg, labels, seed=cfg.seed, tokenizer=tok)
        model = PeftModel.from_pretrained(built.model, str(model_dir))
        is_decoder = built.is_decoder
    elif (model_dir / "config.json").is_file():
        model = AutoModelForTokenClassification.from_pretrained(str(model_dir))
        labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
        from .model import _is_decoder

        is_decoder = _is_decoder(model)
    else:
        raise RunError(f"{model_dir}: neither an adapter (adapter_config.json) nor a model (config.json)")
    if is_decoder:
        apply_unmask(model, cfg.model.unmask)
    model.eval()
    return model, tok, list(labels), cfg


def predict_file(run_dir: Path, input_path: Path, fmt: str = "auto") -> str:
    from .align import encode
    from .evaluate import predict_tags

    sents = read_input(input_path, fmt)  # bad input is reported before the model is loaded
    if not sents:
        raise DataError("no sentences in input", input_path)
    model, tok, labels, cfg = load_run_model(run_dir)
    enc = encode(tok, sents, None, cfg.data.max_length)
    pred = predict_tags(model, enc, labels, tok.pad_token_id, cfg.train.eval_batch_size)
    out = []
    for s, p in zip(sents, pred):
        out.extend(f"{t} {l}" for t, l in zip(s.tokens, p))
        out.append("")
    return "\n".join(out) + "\n"
