"""Inputs that depend on other inputs (``dependsOn``) and SELECT values from an ``expression``, rendered with
the engine's expression renderer."""
from __future__ import annotations

import gc

import pytest

from falconet.runtime.kernel.errors import InvalidEntity
from falconet.runtime.flow.model import InputSpec
from falconet.runtime.flow.inputs import resolve_inputs, validate_inputs_report

expressions = pytest.importorskip("falconet.runtime.expr.render")

CLOUD = InputSpec(id="cloud", type="SELECT", props={"values": ["AWS", "GCP"]})
REGION = InputSpec(id="region", type="SELECT", depends_on_inputs=("cloud",),
                   depends_on_condition="{{ inputs.cloud == 'AWS' }}", props={"values": ["eu-west-1", "us-east-1"]})
ZONE = InputSpec(id="zone", type="STRING", depends_on_inputs=("region",), required=False, defaults="a")


def resolve(provided: dict, inputs=(CLOUD, REGION, ZONE), variables=None) -> dict:
    return resolve_inputs(list(inputs), provided, renderer=expressions.Renderer(), variables=variables or {})


def test_condition_true_enables_the_input():
    assert resolve({"cloud": "AWS", "region": "us-east-1"}) == {"cloud": "AWS", "region": "us-east-1", "zone": "a"}


def test_condition_false_omits_the_input_and_its_dependents():
    assert resolve({"cloud": "GCP", "region": "nowhere"}) == {"cloud": "GCP"}


def test_enabled_dependent_input_is_still_validated():
    with pytest.raises(InvalidEntity) as info:
        resolve({"cloud": "AWS"})
    assert [v.message for v in info.value.violations] == [
        "Invalid input for `region`, missing required input, but received `null`"]


def test_select_values_from_expression():
    dynamic = InputSpec(id="env", type="SELECT", props={"expression": "{{ vars.envs }}"})
    variables = {"vars": {"envs": ["dev", "prod"]}}
    assert resolve({"env": "prod"}, [dynamic], variables) == {"env": "prod"}
    with pytest.raises(InvalidEntity) as info:
        resolve({"env": "test"}, [dynamic], variables)
    assert "it must match the values `[dev, prod]`" in str(info.value)


def test_report_lists_disabled_inputs():
    report = validate_inputs_report([CLOUD, REGION, ZONE], {"cloud": "GCP"}, renderer=expressions.Renderer(),
                                    variables={})
    assert [(r["input"]["id"], r["enabled"], r["errors"]) for r in report] == [
        ("cloud", True, []), ("region", False, []), ("zone", False, [])]


def test_resolving_leaves_no_reference_cycle():
    """Everything a resolution builds is freed when it returns, not left for the next full garbage
    collection (which a server creating executions would otherwise run every half second)."""
    renderer = expressions.Renderer()
    provided = {"cloud": "AWS", "region": "us-east-1"}
    resolve_inputs([CLOUD, REGION, ZONE], provided, renderer=renderer, variables={})   # warm caches
    gc.collect()
    gc.disable()
    try:
        resolve_inputs([CLOUD, REGION, ZONE], provided, renderer=renderer, variables={})
        assert gc.collect() == 0
    finally:
        gc.enable()
