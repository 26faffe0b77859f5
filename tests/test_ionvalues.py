"""Ion values as plain Python: Ion booleans stay booleans (amazon.ion's IonPyBool subclasses int)."""
from amazon.ion import simpleion

from falconet.plugins.ion import from_ion_value
from falconet.runtime.expressions import Renderer


def test_ion_booleans_are_booleans():
    value = from_ion_value(simpleion.loads("{a: true, b: 1, c: false, d: [true, 2.5e0, null]}"))
    assert value == {"a": True, "b": 1, "c": False, "d": [True, 2.5, None]}
    assert value["a"] is True and value["c"] is False and type(value["b"]) is int


def test_from_ion_function_keeps_booleans():
    assert Renderer().render_typed("{{ fromIon('{ok: true}').ok }}", {}) is True
