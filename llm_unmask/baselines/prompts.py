"""Instruction prompts of the IT baseline, in the paper's format (Appendix A.3, Table 3).

A prompt has four lines; training appends the response (``span:type;span:type``, built from the IOB2
tags) after ``### Response:``, evaluation stops there and lets the model write it::

    ### Instruction: please extract named entities and their type from the input sentence, all entity types are in options
    ### Options: person, location, organization, miscellaneous
    ### Sentence: EU rejects German call to boycott British lamb .
    ### Response: EU:organization;German:miscellaneous;British:miscellaneous

Label types appear under natural-language names (``PER`` -> ``person``, ``NP`` -> ``noun phrase``,
``Phone-Write`` -> ``contact via written or telephone communication``), listed in the paper's order.
The wording and names of the four paper tasks are the paper's (its PDF line-break hyphens such as
"ex- tradite" removed); the synthetic tasks reuse the NER wording; any other task (generic ``conll`` or
``jsonl`` files) gets a neutral "spans" wording and its type names lower-cased with ``-``/``_`` as spaces.
A sentence without any span has an empty response.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ConfigError
from ..tasks.iob import spans

SPAN_SEP = ";"
TYPE_SEP = ":"


@dataclass(frozen=True)
class PromptSpec:
    """How one task is asked: the instruction line and the (type, natural name) options, in order."""

    instruction: str
    options: tuple[tuple[str, str], ...]

    @property
    def names(self) -> dict[str, str]:
        """type -> natural-language name."""
        return dict(self.options)

    @property
    def types_by_name(self) -> dict[str, str]:
        """natural-language name -> type."""
        return {name: typ for typ, name in self.options}


def _instruction(what: str, kind: str) -> str:
    return f"please extract {what} from the input sentence, all {kind} types are in options"


NER_INSTRUCTION = _instruction("named entities and their type", "entity")

PROMPTS: dict[str, PromptSpec] = {
    "conll03-ner": PromptSpec(NER_INSTRUCTION, (
        ("PER", "person"), ("LOC", "location"), ("ORG", "organization"), ("MISC", "miscellaneous"))),
    "rest14-atepol": PromptSpec(_instruction("aspect terms and their polarity", "polarity"), (
        ("positive", "positive"), ("negative", "negative"), ("neutral", "neutral"), ("conflict", "conflict"))),
    "ace05-trigger": PromptSpec(_instruction("events and their types", "event"), (
        ("Merge-Org", "merge organization"), ("Start-Org", "start organization"),
        ("Declare-Bankruptcy", "declare bankruptcy"), ("End-Org", "end organization"),
        ("Pardon", "grant pardon"), ("Extradite", "extradite"), ("Execute", "execute"),
        ("Fine", "impose fine"), ("Trial-Hearing", "conduct trial hearing"), ("Sentence", "issue sentence"),
        ("Appeal", "file appeal"), ("Convict", "convict"), ("Sue", "file lawsuit"),
        ("Release-Parole", "release on parole"), ("Arrest-Jail", "arrest and send to jail"),
        ("Charge-Indict", "charge and indict"), ("Acquit", "acquit"),
        ("Demonstrate", "participate in protest or demonstration"), ("Attack", "attack"),
        ("Phone-Write", "contact via written or telephone communication"), ("Meet", "meet"),
        ("Start-Position", "start position"), ("Elect", "elect"), ("End-Position", "end position"),
        ("Nominate", "nominate"), ("Transfer-Ownership", "transfer ownership"),
        ("Transfer-Money", "transfer money"), ("Marry", "marry"), ("Divorce", "divorce"),
        ("Be-Born", "be born"), ("Die", "die"), ("Injure", "sustain injury"), ("Transport", "transport"))),
    "conll03-chunk": PromptSpec(_instruction("chunks and their type", "chunk"), (
        ("NP", "noun phrase"), ("VP", "verb phrase"), ("PP", "prepositional phrase"),
        ("ADVP", "adverb phrase"), ("SBAR", "subordinated clause"), ("ADJP", "adjective phrase"),
        ("PRT", "particles"), ("CONJP", "conjunction phrase"), ("INTJ", "interjection"),
        ("LST", "list marker"), ("UCP", "unlike coordinated phrase"))),
    # The synthetic tasks are NER-like (PER/ORG/LOC): the paper's NER wording, types in the task's order.
    "synthetic-right": PromptSpec(NER_INSTRUCTION, (
        ("PER", "person"), ("ORG", "organization"), ("LOC", "location"))),
    "synthetic-left": PromptSpec(NER_INSTRUCTION, (
        ("PER", "person"), ("ORG", "organization"), ("LOC", "location"))),
}

GENERIC_INSTRUCTION = _instruction("spans and their type", "span")


def natural_name(typ: str) -> str:
    """Fallback name of a type: lower case, ``-`` and ``_`` as spaces (``B-Start-Org`` types too)."""
    return " ".join(typ.replace("-", " ").replace("_", " ").lower().split())


def prompt_spec(task: str, types: Sequence[str]) -> PromptSpec:
    """The spec for ``task`` restricted to ``types`` (those of the loaded data), paper order kept.

    A type the spec does not name, or two types with one name, is a ConfigError: the response could not
    be mapped back unambiguously.
    """
    base = PROMPTS.get(task)
    if base is None:
        options = tuple((t, natural_name(t)) for t in types)
        spec = PromptSpec(GENERIC_INSTRUCTION, options)
    else:
        known = base.names
        missing = [t for t in types if t not in known]
        if missing:
            raise ConfigError(f"IT prompts for task {task}: no option name for type(s) {', '.join(missing)}")
        wanted = set(types)
        spec = PromptSpec(base.instruction, tuple((t, n) for t, n in base.options if t in wanted))
    names = [n for _, n in spec.options]
    if len(set(names)) != len(names) or any(not n or TYPE_SEP in n or SPAN_SEP in n for n in names):
        raise ConfigError(f"IT prompts for task {task}: type names {names} are empty, clash or contain ':'/';'")
    return spec


def render_prompt(spec: PromptSpec, tokens: Sequence[str]) -> str:
    """The evaluation prompt: everything up to and including ``### Response:`` (no trailing space)."""
    return (
        f"### Instruction: {spec.instruction}\n"
        f"### Options: {', '.join(n for _, n in spec.options)}\n"
        f"### Sentence: {' '.join(tokens)}\n"
        f"### Response:"
    )


def render_response(spec: PromptSpec, tokens: Sequence[str], tags: Sequence[str]) -> str:
    """``span:type;span:type`` from IOB2 tags, spans in sentence order; '' when there is no span."""
    names = spec.names
    parts = []
    for typ, start, end in spans(tags):
        if typ not in names:
            raise ConfigError(f"IT prompts: type {typ!r} has no option name")
        parts.append(f"{' '.join(tokens[start:end])}{TYPE_SEP}{names[typ]}")
    return SPAN_SEP.join(parts)


def render_example(spec: PromptSpec, tokens: Sequence[str], tags: Sequence[str]) -> str:
    """A full training text: prompt, a space and the response (no space when the response is empty)."""
    response = render_response(spec, tokens, tags)
    return render_prompt(spec, tokens) + (f" {response}" if response else "")
