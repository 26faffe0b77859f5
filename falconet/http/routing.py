"""URL rules whose URL builders are compiled on first use.

werkzeug (3.1) compiles two Python functions per route when the route is added (``Rule.compile``: an AST
built, walked and passed to ``compile()``), only to build URLs (``url_for``, redirects). The app has 427
routes and builds URLs from none of them in normal operation: that was 854 compilations, about 100 ms
of start-up and 2.5 MB of code objects. :class:`LazyBuilderRule` compiles a rule's builder the first time
it is called and then replaces itself with it, so matching (the regular expressions) is unchanged and a
built URL is the same (``tests/http/test_routing.py``).
"""
from __future__ import annotations

from typing import Any, Callable

from quart.routing import QuartRule


class LazyBuilderRule(QuartRule):
    def _compile_builder(self, append_unknown: bool = True) -> Callable[..., tuple[str, str]]:
        # Rule.compile binds the result to the rule as _build / _build_unknown: a shared function, no closure
        return _build_unknown_on_first_use if append_unknown else _build_on_first_use


def _build_on_first_use(rule: LazyBuilderRule, **values: Any) -> tuple[str, str]:
    return _compiled(rule, "_build", False)(**values)


def _build_unknown_on_first_use(rule: LazyBuilderRule, **values: Any) -> tuple[str, str]:
    return _compiled(rule, "_build_unknown", True)(**values)


def _compiled(rule: LazyBuilderRule, name: str, append_unknown: bool) -> Callable[..., tuple[str, str]]:
    """werkzeug's builder for ``rule``, compiled now and kept in place of the lazy one."""
    builder = QuartRule._compile_builder(rule, append_unknown).__get__(rule, None)
    setattr(rule, name, builder)
    return builder
