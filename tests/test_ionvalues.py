"""Ion values as plain Python: Ion booleans stay booleans (amazon.ion's IonPyBool subclasses int)."""
import pytest
from amazon.ion import simpleion

from falconet.runtime.storage.ionfiles import from_ion_value
from falconet.runtime.expr.render import Renderer


def test_ion_booleans_are_booleans():
    value = from_ion_value(simpleion.loads("{a: true, b: 1, c: false, d: [true, 2.5e0, null]}"))
    assert value == {"a": True, "b": 1, "c": False, "d": [True, 2.5, None]}
    assert value["a"] is True and value["c"] is False and type(value["b"]) is int


def test_from_ion_function_keeps_booleans():
    assert Renderer().render_typed("{{ fromIon('{ok: true}').ok }}", {}) is True


def test_without_the_ion_extra_ion_files_fail_with_the_install_hint():
    """The base install has no amazon.ion (it drags numpy in): Ion features name the extra to install."""
    import subprocess
    import sys

    script = """
import io, sys
sys.modules["amazon"] = None          # as if the 'ion' extra were not installed
from falconet.runtime.kernel.errors import IllegalArgument
from falconet.runtime.storage.ionfiles import read_ion_rows
try:
    list(read_ion_rows(io.StringIO("{a: 1}")))
except IllegalArgument as exc:
    print(exc)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "pip install 'falconet[ion]'" in out.stdout


@pytest.mark.parametrize(("text", "expected"), [("12", 12), ("1E+2", 100), ("1.0", 1.0), ("0.5", 0.5),
                                                ("Infinity", float("inf")), ("-Infinity", float("-inf"))])
def test_decimals_become_json_numbers(text, expected):
    import decimal

    from falconet.sdk import decimal_number
    value = decimal_number(decimal.Decimal(text))
    assert value == expected and type(value) is type(expected)
