"""CoNLL-2003 English: ``conll03-ner`` (column 3) and ``conll03-chunk`` (column 2).

Local files: ``train.txt``/``valid.txt``/``test.txt`` (IOB2, the layout the Hugging Face copy was
built from) or, when ``train.txt`` is absent, the official ``eng.train``/``eng.testa``/``eng.testb``
(IOB1). Either may sit in the data directory itself or in ``<root>/conll2003/``. IOB1 is detected
per file and converted, with a note, so both copies give identical IOB2 tags.

Without a data directory the task comes from the Hub's parquet export of CoNLL-2003 (the loading
script of the original repository no longer runs on current ``datasets``); integer tag ids are
mapped to names through the dataset's ClassLabel features.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import DataError
from .base import Options, Sentence, TaskData, check_not_empty, first_existing
from .conll import blocks_to_sentences, read_column_file
from .iob import iob1_to_iob2, label_list, looks_like_iob1, validate_iob2

NER_TYPES = ("PER", "LOC", "ORG", "MISC")
CHUNK_TYPES = ("NP", "VP", "PP", "ADVP", "SBAR", "ADJP", "PRT", "CONJP", "INTJ", "LST", "UCP")

HUB_DATASET = "eriktks/conll2003"
HUB_REVISION = "refs/convert/parquet"
# Tag names of the Hub copy, in id order; used only if a copy lost its ClassLabel metadata.
HUB_NER_NAMES = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC")
HUB_CHUNK_NAMES = ("O", "B-ADJP", "I-ADJP", "B-ADVP", "I-ADVP", "B-CONJP", "I-CONJP", "B-INTJ", "I-INTJ",
                   "B-LST", "I-LST", "B-NP", "I-NP", "B-PP", "I-PP", "B-PRT", "I-PRT", "B-SBAR", "I-SBAR",
                   "B-UCP", "I-UCP", "B-VP", "I-VP")

# column index in `token POS chunk NER`, Hub field, fixed types, fallback names, words for notes
_KINDS = {
    "ner": (3, "ner_tags", NER_TYPES, HUB_NER_NAMES, "NER column"),
    "chunk": (2, "chunk_tags", CHUNK_TYPES, HUB_CHUNK_NAMES, "chunk column"),
}
_LOCAL_FILES = {
    "txt": {"train": ("train.txt",), "validation": ("valid.txt", "dev.txt"), "test": ("test.txt",)},
    "eng": {"train": ("eng.train",), "validation": ("eng.testa",), "test": ("eng.testb",)},
}
CONLL03_OPTIONS = ("hub_dataset", "hub_revision")


def find_conll03_dir(root: Path) -> Path:
    """The folder holding the files: ``root`` itself, else ``root/conll2003`` (or ``conll03``)."""
    for folder in (root, root / "conll2003", root / "conll03"):
        if first_existing(folder, "train.txt", "eng.train"):
            return folder
    raise DataError("no CoNLL-2003 files here or in conll2003/ (need train.txt or eng.train)", root)


def local_files(folder: Path) -> dict[str, Path]:
    """Split -> file; ``train.txt`` layout wins, the ``eng.*`` originals are used only without it."""
    layout = _LOCAL_FILES["txt"] if (folder / "train.txt").is_file() else _LOCAL_FILES["eng"]
    out = {}
    for split, names in layout.items():
        found = first_existing(folder, *names)
        if found is None:
            raise DataError(f"missing the {split} file {' or '.join(names)}", folder)
        out[split] = found
    return out


def load_conll03(name: str, kind: str, root: Path | None, options: dict) -> TaskData:
    """Load the NER or chunk view of CoNLL-2003 from local files or, without ``root``, the Hub."""
    opts = Options(name, options, CONLL03_OPTIONS)
    col, field, types, fallback, what = _KINDS[kind]
    labels = label_list(types)
    if root is None:
        dataset = opts.str("hub_dataset", HUB_DATASET)
        revision = opts.str("hub_revision", HUB_REVISION)
        splits, notes = load_conll03_from_hub(field, labels, fallback, dataset, revision)
        return TaskData(name, labels, splits, notes)
    folder = find_conll03_dir(root)
    splits, notes = {}, []
    for split, path in local_files(folder).items():
        blocks = read_column_file(path, n_cols=4)
        sentences, file_notes = blocks_to_sentences(path, blocks, 0, col, labels=labels, what=what)
        check_not_empty(split, sentences, path)
        splits[split] = sentences
        notes += file_notes
    return TaskData(name, labels, splits, notes)


# ---------------------------------------------------------------- Hugging Face Hub


def class_names(feature: Any, fallback: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """Tag names of a ``Sequence``/``List`` of ``ClassLabel`` feature, in id order."""
    inner = getattr(feature, "feature", None)
    if inner is None and isinstance(feature, (list, tuple)) and feature:
        inner = feature[0]
    names = getattr(inner, "names", None)
    if names:
        return tuple(names)
    if fallback is not None:
        return fallback
    raise DataError(f"tag feature {feature!r} has no ClassLabel names")


def hub_split_to_sentences(ds: Any, field: str, labels: tuple[str, ...], where: str,
                           fallback: tuple[str, ...] | None = None) -> tuple[list[Sentence], list[str]]:
    """Rows of a ``datasets.Dataset`` (``tokens`` + integer ``field``) -> validated IOB2 sentences.

    ``where`` names the source in messages (``dataset/split``); a row's "line" is its 1-based index.
    """
    names = class_names(ds.features[field], fallback)
    sentences, notes, converted = [], [], 0
    for i, (tokens, ids) in enumerate(zip(ds["tokens"], ds[field]), start=1):
        if len(tokens) != len(ids):
            raise DataError(f"{len(tokens)} tokens but {len(ids)} tags", where, i)
        try:
            tags = [names[j] for j in ids]
        except (IndexError, TypeError):
            raise DataError(f"tag id outside 0..{len(names) - 1}: {list(ids)}", where, i) from None
        validate_iob2(tags, labels=labels, path=where, lines=i)
        if looks_like_iob1(tags):
            tags, converted = iob1_to_iob2(tags), converted + 1
        sentences.append(Sentence(tuple(tokens), tuple(tags), f"{where}:{i}"))
    if converted:
        notes.append(f"converted IOB1 -> IOB2 in {converted} sentences of {where}")
    return sentences, notes


def load_conll03_from_hub(field: str, labels: tuple[str, ...], fallback: tuple[str, ...],
                          dataset: str = HUB_DATASET, revision: str = HUB_REVISION):
    """Download (or reuse the cache of) the parquet copy; offline use needs --data-dir instead.

    Without a network the Hub client retries for about 30 s before failing; a 3-second probe first makes an
    unreachable Hub a fast offline load (the cached copy if there is one, else the clear error below).
    """
    online = hub_reachable()
    if not online:
        _go_offline()
    try:
        import datasets

        dsd = datasets.load_dataset(dataset, revision=revision)
    except Exception as err:  # noqa: BLE001 - any Hub/network failure becomes one actionable line
        first = (str(err).strip().splitlines() or [""])[0][:200]
        if not online:
            raise DataError(f"no --data-dir, and the Hugging Face Hub is not reachable (offline) with no cached "
                            f"copy of {dataset}; pass --data-dir with the CoNLL-2003 files") from None
        raise DataError(f"could not load {dataset}@{revision} from the Hugging Face Hub "
                        f"({type(err).__name__}: {first}); pass --data-dir with the CoNLL-2003 files") from None
    splits, notes = {}, [f"loaded from the Hugging Face Hub: {dataset}@{revision}"]
    for split in ("train", "validation", "test"):
        if split not in dsd:
            raise DataError(f"the Hub copy has no {split} split (has {', '.join(dsd)})", dataset)
        where = f"{dataset}/{split}"
        sentences, split_notes = hub_split_to_sentences(dsd[split], field, labels, where, fallback)
        check_not_empty(split, sentences, where)
        splits[split] = sentences
        notes += split_notes
    return splits, notes


def hub_reachable(timeout: float = 3.0) -> bool:
    """True when offline mode is off and the Hub's host answers a TCP connection within ``timeout`` seconds."""
    import os
    import socket
    from urllib.parse import urlparse

    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "huggingface.co", port), timeout=timeout):
            return True
    except OSError:
        return False


def _go_offline() -> None:
    """Offline mode for this process's Hub and datasets clients (read from the environment on import)."""
    import os
    import sys

    os.environ["HF_HUB_OFFLINE"] = os.environ["HF_DATASETS_OFFLINE"] = "1"
    for module, attr in (("huggingface_hub.constants", "HF_HUB_OFFLINE"), ("datasets.config", "HF_HUB_OFFLINE"),
                         ("datasets.config", "HF_DATASETS_OFFLINE")):
        if module in sys.modules and hasattr(sys.modules[module], attr):
            setattr(sys.modules[module], attr, True)
