"""Pre-training corpora: the Hub's BookCorpus, local text files, or an embedded generated corpus.

Text is tokenized once with ``datasets.map`` (each line as ``<s> line </s>``, as RoBERTa pre-training does),
concatenated and cut into blocks of ``block_size`` tokens, and saved as an Arrow dataset under the output's
``cache/`` folder. Arrow files are memory-mapped, so a 1B-token corpus (BookCorpus: ~74M lines) never has to
fit in RAM, and the encoder and decoder runs (and any resumed run) reuse the same blocks.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
import random
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

from llm_unmask.errors import ConfigError, DataError

log = logging.getLogger(__name__)

BOOKCORPUS = "bookcorpus/bookcorpus"
# Rows per ``map`` batch when cutting blocks: the remainder of each batch (< one block) is dropped, so a
# large batch keeps the loss under 1% of the tokens.
GROUP_BATCH = 10000


@dataclass(frozen=True)
class CorpusSource:
    kind: str  # generated | hub | files
    name: str  # for messages (a path, a hub name, 'generated')
    files: tuple[Path, ...] = ()
    hub_name: str | None = None
    hub_config: str | None = None
    size: int = 0
    seed: int = 0

    def key(self) -> str:
        """Changes when the text may have changed (file sizes and modification times for local files)."""
        parts: list = [self.kind, self.hub_name, self.hub_config, self.size, self.seed]
        for f in self.files:
            st = f.stat()
            parts.append((str(f.resolve()), st.st_size, st.st_mtime_ns))
        return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:12]


def resolve_source(spec: str, *, size: int = 20000, seed: int = 0) -> CorpusSource:
    """'generated', 'bookcorpus', 'hub:NAME[:CONFIG]', or file paths/globs (comma-separated)."""
    spec = (spec or "").strip()
    if not spec:
        raise ConfigError("corpus is empty: give 'generated', 'bookcorpus', 'hub:NAME' or a path/glob (--corpus)")
    if spec == "generated":
        return CorpusSource("generated", "generated", size=size, seed=seed)
    if spec == "bookcorpus":
        return CorpusSource("hub", BOOKCORPUS, hub_name=BOOKCORPUS)
    if spec.startswith("hub:"):
        name, _, config = spec[4:].partition(":")
        if not name:
            raise ConfigError(f"--corpus {spec}: expected hub:NAME or hub:NAME:CONFIG")
        return CorpusSource("hub", name, hub_name=name, hub_config=config or None)
    files: list[Path] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        expanded = os.path.expanduser(part)
        matches = sorted(glob.glob(expanded, recursive=True)) if glob.has_magic(expanded) else [expanded]
        matches = [m for m in matches if not Path(m).is_dir()] if glob.has_magic(expanded) else matches
        if not matches:
            raise DataError("no file matches this corpus pattern", part)
        for m in matches:
            p = Path(m)
            if p.is_dir():
                raise DataError("is a folder; give text files or a glob such as DIR/*.txt", p)
            if not p.is_file():
                raise DataError("corpus file not found", p)
            files.append(p)
    if not files:
        raise ConfigError(f"--corpus {spec!r} names no files")
    return CorpusSource("files", ", ".join(str(f) for f in files) if len(files) <= 3
                        else f"{files[0]} and {len(files) - 1} more files", files=tuple(files))


# ------------------------------------------------------------------------------------------ generated


_EXTRA = (
    "the weather was mild and the market opened early .",
    "after the meeting , everyone went home and the office was quiet .",
    "she wrote a long letter to her brother about the new house .",
    "the committee discussed the report at length but reached no decision .",
    "in the morning the river was calm and the boats stayed in the harbour .",
    "he said that the train would arrive later than expected .",
    "the children played in the garden while their parents talked .",
    "prices rose again this year , according to the latest figures .",
)


def generated_lines(n: int, seed: int = 0) -> Iterator[str]:
    """``n`` deterministic English-like paragraphs (1-4 sentences each).

    Sentences come from the synthetic tasks' generator (names typed by cue phrases on either side) mixed
    with plain filler sentences, so a model pre-trained on it has seen the words of the demo SL tasks.
    """
    from llm_unmask.tasks.synthetic import generate_sentence

    rng = random.Random(seed * 7919 + 17)
    for _ in range(n):
        parts = []
        for _ in range(rng.choice((1, 2, 2, 3, 4))):
            r = rng.random()
            if r < 0.15:
                text = rng.choice(_EXTRA)
                parts.append(text[0].upper() + text[1:])
            else:
                parts.append(" ".join(generate_sentence(rng, "right" if r < 0.6 else "left").tokens))
        yield " ".join(parts)


# ------------------------------------------------------------------------------------------ loading


def load_texts(source: CorpusSource, cache_dir: Path | None = None, limit: int | None = None):
    """A ``datasets.Dataset`` with one non-blank line per row in column ``text``."""
    import datasets

    if source.kind == "generated":
        ds = datasets.Dataset.from_dict({"text": list(generated_lines(source.size, source.seed))})
    elif source.kind == "files":
        if all(f.stat().st_size == 0 for f in source.files):
            raise DataError("corpus is empty (0 bytes)", source.name)
        kwargs = {"cache_dir": str(cache_dir / "hf")} if cache_dir is not None else {}
        try:
            ds = datasets.load_dataset("text", data_files=[str(f) for f in source.files], split="train", **kwargs)
        except UnicodeDecodeError as exc:
            raise DataError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", source.name) from exc
        ds = ds.filter(lambda batch: [bool(t and t.strip()) for t in batch["text"]], batched=True,
                       desc="drop blank lines")
    else:
        ds = load_hub(source)
    if limit is not None:
        ds = ds.select(range(min(int(limit), len(ds))))
    if len(ds) == 0:
        raise DataError("corpus is empty (no non-blank lines)", source.name)
    return ds


def load_hub(source: CorpusSource):
    """A Hub dataset's train split, as memory-mapped Arrow in the Hugging Face cache (downloaded once).

    BookCorpus is a script-based dataset on the Hub; current ``datasets`` no longer runs scripts, so when the
    plain load fails we read the Hub's automatic Parquet conversion (``refs/convert/parquet``).
    """
    import datasets

    def attempt(**kw):
        return datasets.load_dataset(source.hub_name, source.hub_config, split="train", **kw)

    try:
        try:
            ds = attempt()
        except Exception as first:  # noqa: BLE001 - retry with the Parquet conversion, then report the first
            log.info("loading %s failed (%s); trying its Parquet conversion", source.hub_name, first)
            try:
                ds = attempt(revision="refs/convert/parquet")
            except Exception:  # noqa: BLE001
                raise first from None
    except Exception as exc:
        raise DataError(
            f"could not load the Hub dataset ({type(exc).__name__}: {exc}). Offline? Download the text once and "
            f"pass it as --corpus 'DIR/*.txt' (one sentence per line)", source.hub_name) from exc
    if "text" not in ds.column_names:
        raise DataError(f"Hub dataset has no 'text' column (columns: {', '.join(ds.column_names)})", source.hub_name)
    return ds.select_columns(["text"])


def iter_lines(source: CorpusSource, limit: int | None = None, cache_dir: Path | None = None) -> Iterator[str]:
    """Lines for tokenizer training, without holding the corpus in memory."""
    ds = load_texts(source, cache_dir, limit)
    for start in range(0, len(ds), 10000):
        yield from ds[start : start + 10000]["text"]


# ------------------------------------------------------------------------------------------ blocks


def tokenizer_key(tokenizer) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    text = backend.to_str() if backend is not None else json.dumps(tokenizer.get_vocab(), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def build_blocks(source: CorpusSource, tokenizer, block_size: int, cache_dir: Path, *, limit: int | None = None,
                 num_proc: int = 1):
    """Tokenize, concatenate and cut into ``block_size`` blocks; cached in ``cache_dir`` (memory-mapped).

    Returns a numpy-formatted ``datasets.Dataset`` with one column ``input_ids`` of fixed length.
    """
    import datasets
    from datasets import Features, List, Value

    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tok_key = hashlib.sha256(f"{source.key()}|{tokenizer_key(tokenizer)}|{limit}".encode()).hexdigest()[:12]
    final = cache_dir / f"blocks-{tok_key}-{block_size}"
    if (final / "dataset_info.json").is_file():
        log.info("corpus blocks: %s (cached)", final)
        return datasets.load_from_disk(str(final)).with_format("numpy")

    texts = load_texts(source, cache_dir, limit)
    proc = num_proc if num_proc and num_proc > 1 else None

    def tokenize(batch):
        return {"input_ids": tokenizer(batch["text"], add_special_tokens=True, return_attention_mask=False,
                                       truncation=False, verbose=False)["input_ids"]}

    tokens = texts.map(tokenize, batched=True, remove_columns=texts.column_names, num_proc=proc,
                       cache_file_name=str(cache_dir / f"tokens-{tok_key}.arrow"), new_fingerprint=f"tok-{tok_key}",
                       features=Features({"input_ids": List(Value("int32"))}), desc="tokenize corpus")

    def group(batch):
        ids = list(chain.from_iterable(batch["input_ids"]))
        n = len(ids) // block_size * block_size
        return {"input_ids": [ids[i : i + block_size] for i in range(0, n, block_size)]}

    blocks = tokens.map(group, batched=True, batch_size=GROUP_BATCH, num_proc=proc,
                        cache_file_name=str(cache_dir / f"group-{tok_key}-{block_size}.arrow"),
                        new_fingerprint=f"group-{tok_key}-{block_size}",
                        features=Features({"input_ids": List(Value("int32"), length=block_size)}),
                        desc=f"cut into blocks of {block_size}")
    if len(blocks) == 0:
        n_tok = sum(len(x) for x in tokens["input_ids"])
        raise DataError(f"corpus is too small: {n_tok} tokens after tokenization, fewer than one block of "
                        f"{block_size} (block_size)", source.name)
    tmp = cache_dir / f"{final.name}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    blocks.save_to_disk(str(tmp))
    if (final / "dataset_info.json").is_file():  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
    for stale in (cache_dir / f"group-{tok_key}-{block_size}.arrow",):
        stale.unlink(missing_ok=True)
    log.info("corpus %s: %d blocks of %d tokens", source.name, len(blocks), block_size)
    return datasets.load_from_disk(str(final)).with_format("numpy")
