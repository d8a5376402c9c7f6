"""Unmask group codes: Gray-code order for Figure 1 and the comparison sets of the paper's t-test.

A code has one digit per layer group, left = the group nearest the input, ``1`` = causal mask removed.
Everything here is generated for any group count, so a 2-, 3- or 8-group sweep reports the same way.
"""

from __future__ import annotations

import re

_CODE_RE = re.compile(r"^[01]+$")


def is_code(value) -> bool:
    """True for a 0/1 group code such as ``"0110"`` (not ``layers:...`` or ``None``)."""
    return isinstance(value, str) and _CODE_RE.match(value) is not None


def all_codes(groups: int) -> list[str]:
    """The 2**groups codes in numeric order (``0000``, ``0001``, ...)."""
    _check_groups(groups)
    return [format(i, f"0{groups}b") for i in range(2**groups)]


def gray_order(groups: int) -> list[str]:
    """Reflected binary Gray code starting at all-masked: neighbours differ in exactly one group.

    For 4 groups: 0000 0001 0011 0010 0110 0111 0101 0100 1100 1101 1111 1110 1010 1011 1001 1000.
    """
    _check_groups(groups)
    return [format(i ^ (i >> 1), f"0{groups}b") for i in range(2**groups)]


def last_unmasked(code: str) -> int:
    """Index of the unmasked group nearest the output (-1 when nothing is unmasked)."""
    return code.rfind("1")


def comparison_set(code: str) -> list[str]:
    """Configurations that keep ``code`` and additionally unmask at least one group closer to the output.

    "Closer to the output" means to the right of ``code``'s last unmasked group, so the prefix up to
    that group is kept and the rest is any non-zero pattern: ``0100`` -> ``0101 0110 0111``;
    ``1000`` -> every other ``1xxx``; ``0110`` -> ``0111``. Empty when the last group is already unmasked.
    """
    if not is_code(code):
        raise ValueError(f"not a group code: {code!r}")
    k = last_unmasked(code)
    if k < 0:
        return []
    head, width = code[: k + 1], len(code) - k - 1
    return [head + format(i, f"0{width}b") for i in range(1, 2**width)] if width else []


def tested_configs(groups: int) -> list[str]:
    """Configurations the t-test is run for: at least one unmasked group and a non-empty comparison set.

    That is every code with a ``1`` whose last group is masked (2**(groups-1) - 1 codes). For 4 groups
    this is the paper's 0100, 0110, 1000, 1010, 1100, 1110 plus 0010 (the paper does not list 0010,
    whose only comparison is 0011; it is kept here so the rule is the same for every group count).
    """
    return [c for c in all_codes(groups) if "1" in c and comparison_set(c)]


PAPER_TESTED = ("0100", "0110", "1000", "1010", "1100", "1110")


def _check_groups(groups: int) -> None:
    if not isinstance(groups, int) or groups < 1 or groups > 12:
        raise ValueError(f"group count must be an integer between 1 and 12, got {groups!r}")
