"""The IT baseline: encoding/packing, config resolution, and a tiny random Llama run end to end (CPU)."""

import json

import pytest
from click.testing import CliRunner

from llm_unmask.baselines.it import PromptEncoder, pack_examples, resolve_it_config
from llm_unmask.cli import main
from llm_unmask.config import load_config
from llm_unmask.errors import ConfigError
from llm_unmask.tokenization import train_tokenizer


@pytest.fixture(scope="module")
def tok(corpus_texts):
    return train_tokenizer(corpus_texts + ["### Response: Kelvar:person;Lisbon:location"], vocab_size=300)


def test_loss_only_on_response_and_eos(tok):
    enc = PromptEncoder(tok)
    prompt = "### Sentence: Kelvar smiled in Lisbon .\n### Response:"
    ids, labels = enc.example(prompt, "Kelvar:person;Lisbon:location")
    p = enc.prompt(prompt)
    assert ids[: len(p)] == p  # training sees the evaluation prompt's exact ids
    assert labels[: len(p)] == [-100] * len(p)
    assert labels[len(p):] == ids[len(p):] and ids[-1] == tok.eos_token_id
    assert tok.decode(ids[len(p):], skip_special_tokens=True).strip() == "Kelvar:person;Lisbon:location"
    ids, labels = enc.example(prompt, "")  # no span: the model learns to stop right away
    assert ids == p + [tok.eos_token_id] and labels == [-100] * len(p) + [tok.eos_token_id]


def test_packing_keeps_examples_whole():
    examples = [([i] * n, [i] * n) for i, n in enumerate([3, 4, 2, 5, 9, 1], start=1)]
    packed = pack_examples(examples, 6, seed=0)
    assert all(len(x) <= 6 for x in packed.input_ids)
    assert packed.n_examples == 6 and packed.n_truncated == 1  # the 9-token example is cut to 6
    runs = []
    for seq in packed.input_ids:
        for tok_id in seq:
            if not runs or runs[-1][0] != tok_id:
                runs.append([tok_id, 0])
            runs[-1][1] += 1
    assert sorted(tuple(r) for r in runs) == [(1, 3), (2, 4), (3, 2), (4, 5), (5, 6), (6, 1)]
    assert pack_examples(examples, 6, seed=0).input_ids == packed.input_ids  # seeded


def test_paper_values_fill_nulls_and_unmask_is_refused():
    cfg = load_config("configs/baselines/it-llama2-7b.yaml", ["data.task=rest14-atepol"])
    r = resolve_it_config(cfg)
    assert (r.variant, r.data.max_length, r.train.epochs, r.train.batch_size) == ("it", 512, 10, 4)
    assert r.model.lora.target_modules == ["q_proj", "v_proj"] and r.model.lora.r == 64
    r = resolve_it_config(load_config("configs/baselines/it-llama2-7b.yaml", ["data.task=conll03-ner"]))
    assert (r.data.max_length, r.train.epochs, r.train.batch_size) == (1024, 5, 2)
    with pytest.raises(ConfigError, match="stock causal model"):
        resolve_it_config(load_config("configs/baselines/it-tiny.yaml", ["model.unmask=0110"]))


TINY = ["--config", "it-tiny", "--set", "data.options.n_train=24", "--set", "data.options.n_validation=6",
        "--set", "data.options.n_test=6", "--set", "data.max_length=256", "--set", "train.max_steps=2",
        "--max-generation-length", "120", "--quiet"]


def test_tiny_llama_it_end_to_end(tmp_path):
    runner = CliRunner()
    out = tmp_path / "runs"
    res = runner.invoke(main, ["it-train", *TINY, "--output", str(out)])
    assert res.exit_code == 0, res.output
    (run,) = [p for p in out.iterdir() if not p.name.startswith(".")]
    assert run.name.startswith("synthetic-right__tiny-llama-L4__it__seed120__")
    m = json.loads((run / "metrics.json").read_text())
    assert m["variant"] == "it" and m["unmask"] is None and m["task"] == "synthetic-right"
    assert m["n_train"] == 24 and m["train_steps"] == 2 and m["pack_length"] == 256
    assert m["generation"]["max_length"] == 120
    for split in ("validation", "test"):
        s = m["splits"][split]
        assert s["n_sentences"] == 6 and 0.0 <= s["f1"] <= 1.0
        assert s["n_unparsable"] + s["n_empty"] + s["responses"]["ok"] == 6
        lines = (run / "predictions" / f"{split}.responses.jsonl").read_text().splitlines()
        assert len(lines) == 6 and all("status" in json.loads(x) for x in lines)
        conll = (run / "predictions" / f"{split}.conll").read_text()
        assert conll.count("\n\n") == 6
    in_memory = (run / "predictions" / "test.responses.jsonl").read_text()

    # resumable: a second it-train finds the run complete and does nothing
    res = runner.invoke(main, ["it-train", *TINY, "--output", str(out)])
    assert res.exit_code == 0 and "validation F1" in res.output
    assert json.loads((run / "metrics.json").read_text())["eval_seconds"] == m["eval_seconds"]
    # it-eval skips a complete run; --force reloads the saved model and reproduces the responses
    res = runner.invoke(main, ["it-eval", "--run", str(run), "--quiet"])
    assert res.exit_code == 0 and json.loads((run / "metrics.json").read_text())["eval_seconds"] == m["eval_seconds"]
    res = runner.invoke(main, ["it-eval", "--run", str(run), "--force", "--max-generation-length", "120", "--quiet"])
    assert res.exit_code == 0, res.output
    assert (run / "predictions" / "test.responses.jsonl").read_text() == in_memory


def test_it_train_without_eval_then_it_eval(tmp_path):
    runner = CliRunner()
    res = runner.invoke(main, ["it-train", *TINY, "--seed", "121", "--no-eval", "--output", str(tmp_path)])
    assert res.exit_code == 0, res.output
    (run,) = [p for p in tmp_path.iterdir() if not p.name.startswith(".")]
    assert (run / "train.json").is_file() and (run / "model").is_dir() and not (run / "metrics.json").exists()
    assert "trained, not evaluated" in res.output
    res = runner.invoke(main, ["it-eval", "--run", str(run), "--max-generation-length", "120", "--quiet"])
    assert res.exit_code == 0, res.output
    m = json.loads((run / "metrics.json").read_text())
    assert m["seed"] == 121 and m["train_steps"] == 2 and set(m["splits"]) == {"validation", "test"}


def test_it_train_refuses_unmask_and_encoders(tmp_path):
    runner = CliRunner()
    res = runner.invoke(main, ["it-train", *TINY, "--set", "model.unmask=0110", "--output", str(tmp_path)])
    assert res.exit_code == 2 and "stock causal model" in res.output
    res = runner.invoke(main, ["it-train", *TINY, "--tiny-random", "bert", "--output", str(tmp_path)])
    assert res.exit_code == 2 and "needs a decoder" in res.output


def _tiny_causal_lm(tok):
    from llm_unmask.baselines.it import load_causal_lm

    cfg = load_config("configs/baselines/it-tiny.yaml", ["model.tiny_layers=2", "model.tiny_hidden=32"])
    model, _ = load_causal_lm(cfg.model, tok, seed=0, max_positions=256)
    return model


def test_decoding_model_default_keeps_the_models_sampling_and_greedy_turns_it_off(tok):
    from llm_unmask.baselines.it import generation_config

    model = _tiny_causal_lm(tok)
    model.generation_config.do_sample, model.generation_config.top_k = True, 7
    model.generation_config.temperature = 1.5
    gen = generation_config(model, tok, 100, "model-default")
    assert (gen.do_sample, gen.top_k, gen.temperature, gen.max_length) == (True, 7, 1.5, 100)
    gen = generation_config(model, tok, 100, "greedy")
    assert (gen.do_sample, gen.top_k, gen.temperature, gen.num_beams) == (False, None, None, 1)
    with pytest.raises(ConfigError, match="decoding='beam'"):
        generation_config(model, tok, 100, "beam")


def test_sampled_responses_are_seeded(tok):
    from llm_unmask.baselines.it import generate_responses

    model = _tiny_causal_lm(tok)
    model.generation_config.do_sample, model.generation_config.temperature = True, 2.0
    prompts = [f"### Sentence: Kelvar smiled in Lisbon {i} .\n### Response:" for i in range(6)]

    def run(decoding, seed):
        return generate_responses(model, tok, prompts, batch_size=3, max_length=60, decoding=decoding, seed=seed)[0]

    assert run("model-default", 120) == run("model-default", 120)
    assert run("model-default", 120) != run("model-default", 121)
    assert run("greedy", 120) == run("greedy", 121)


def test_paper_it_configs_decode_as_the_paper_and_record_it():
    from llm_unmask.config import config_hash

    for name in ("it-llama2-7b", "it-mistral-7b"):
        cfg = resolve_it_config(load_config(f"configs/baselines/{name}.yaml", ["data.task=conll03-ner"]))
        assert cfg.decoding == "model-default"
        greedy = resolve_it_config(load_config(f"configs/baselines/{name}.yaml",
                                               ["data.task=conll03-ner", "decoding=greedy"]))
        assert config_hash(greedy) != config_hash(cfg)
    with pytest.raises(ConfigError, match="decoding"):
        resolve_it_config(load_config("configs/baselines/it-tiny.yaml", ["decoding=sampled"]))


def test_it_metrics_record_the_decoding(tmp_path):
    res = CliRunner().invoke(main, ["it-train", *TINY, "--set", "decoding=model-default", "--output", str(tmp_path)])
    assert res.exit_code == 0, res.output
    (run,) = [p for p in tmp_path.iterdir() if not p.name.startswith(".")]
    g = json.loads((run / "metrics.json").read_text())["generation"]
    assert g["decoding"] == "model-default" and g["max_length"] == 120 and isinstance(g["do_sample"], bool)
    assert json.loads((run / "metrics.json").read_text())["metric"] == "seqeval-strict-iob2"
