"""The installed transformers lies inside the pin the mask-control tests were run on (pyproject.toml).

scripts/setup.sh installs the newest release the pin allows, so CI always tests the newest one; this
test catches a venv (or a pin) that drifted apart.
"""

import re
from importlib.metadata import version
from pathlib import Path

from packaging.specifiers import SpecifierSet

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def test_installed_transformers_is_inside_the_pin():
    spec = re.search(r'"transformers([<>=!~][^"]*)"', PYPROJECT.read_text()).group(1)
    assert version("transformers") in SpecifierSet(spec), f"transformers {version('transformers')} outside {spec}"


def test_setup_installs_the_newest_transformers_in_the_pin():
    text = (PYPROJECT.parent / "scripts" / "setup.sh").read_text()
    assert 'pip install -q --upgrade "$TRANSFORMERS_SPEC"' in text
