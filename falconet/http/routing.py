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
        # Rule.compile binds the result to the rule and stores it as _build / _build_unknown
        name = "_build_unknown" if append_unknown else "_build"
        compile_builder = super()._compile_builder

        def build_on_first_use(rule: LazyBuilderRule, **values: Any) -> tuple[str, str]:
            builder = compile_builder(append_unknown).__get__(rule, None)
            setattr(rule, name, builder)
            return builder(**values)

        return build_on_first_use
