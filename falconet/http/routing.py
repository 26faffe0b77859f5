"""URL rules: builders compiled on first use, and the tenant copies of the API matched through one tree.

werkzeug (3.1) compiles two Python functions per route when the route is added (``Rule.compile``: an AST
built, walked and passed to ``compile()``), only to build URLs (``url_for``, redirects). The app has 427
routes and builds URLs from none of them in normal operation: that was 854 compilations, about 100 ms
of start-up and 2.5 MB of code objects. :class:`LazyBuilderRule` compiles a rule's builder the first time
it is called and then replaces itself with it, so matching (the regular expressions) is unchanged and a
built URL is the same (``tests/http/test_routing.py``).

Every ``/api/v1`` route also exists under the tenant prefix ``/api/v1/main`` (``falconet/http/app.py``
registers each API blueprint twice). werkzeug matches a path by walking a tree of states, one per path
segment, built from each rule's parsed parts (about 3 KB per rule). The ``/api/v1/main`` copies are a
second identical subtree under the segment ``main``: :class:`TenantMap` does not parse them into the tree
but grafts, at every update, a copy of the ``/api/v1`` subtree's states there that holds each copy's rule
in place of the rule it copies (and none of the rules that have no copy, such as ``/api/v1/configs``).
The walk, the precedence between static and dynamic segments, 405/redirect answers and the matched rule
(``main_…`` endpoint, its URL) are those of the separate subtree (``tests/http/test_routing.py`` matches
every route and a corpus of paths against a map holding real copies).

Matching a path walks the tree again for every request (~7 µs for ``POST /api/v1/executions/{ns}/{id}``:
a recursive call per segment, the dynamic segments' regular expressions, the converters). The matcher keeps
the outcome of the last :data:`MATCHES_KEPT` successful matches of short paths (a client polling an
execution or creating executions of a flow asks for the same path again), each answered with a copy of its
values; a path that does not match, redirects or fails a converter is walked each time, and adding a rule
forgets them all.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

from quart.routing import QuartMap, QuartRule
from werkzeug.routing import Rule, RuleFactory
from werkzeug.routing.matcher import State, StateMachineMatcher

#: successful matches the matcher keeps, and the longest path it keeps one for (bounded memory)
MATCHES_KEPT = 512
KEPT_PATH_LENGTH = 256


class LazyBuilderRule(QuartRule):
    def _compile_builder(self, append_unknown: bool = True) -> Callable[..., tuple[str, str]]:
        # Rule.compile binds the result to the rule as _build / _build_unknown: a shared function, no closure
        return _build_unknown_on_first_use if append_unknown else _build_on_first_use

    def forget_parts(self) -> None:
        """Drop the parsed parts the matcher's tree is built from (a tenant copy is not in the tree)."""
        self._parts = []


def _build_on_first_use(rule: LazyBuilderRule, **values: Any) -> tuple[str, str]:
    return _compiled(rule, "_build", False)(**values)


def _build_unknown_on_first_use(rule: LazyBuilderRule, **values: Any) -> tuple[str, str]:
    return _compiled(rule, "_build_unknown", True)(**values)


def _compiled(rule: LazyBuilderRule, name: str, append_unknown: bool) -> Callable[..., tuple[str, str]]:
    """werkzeug's builder for ``rule``, compiled now and kept in place of the lazy one."""
    builder = QuartRule._compile_builder(rule, append_unknown).__get__(rule, None)
    setattr(rule, name, builder)
    return builder


class TenantMap(QuartMap):
    """A URL map where the rules under ``PREFIX/TENANT`` copy rules under ``PREFIX`` and share their states.

    A rule ``PREFIX/TENANT/rest`` with endpoint ``TENANT_endpoint`` must follow the rule ``PREFIX/rest``
    with endpoint ``endpoint`` and the same options (methods, websocket, slashes, defaults…); any other
    rule under the tenant prefix is refused (``ValueError``).
    """

    PREFIX = "/api/v1"
    TENANT = "main"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._originals: dict[tuple[str, Any], list[Rule]] = {}   # (rule, endpoint) -> rules under PREFIX
        self._tree = TenantMatcher(self._matcher.merge_slashes, self.PREFIX, self.TENANT)
        self._matcher = self._tree

    def add(self, rulefactory: RuleFactory) -> None:
        for rule in rulefactory.get_rules(self):
            tenant_prefix = f"{self.PREFIX}/{self.TENANT}"
            if rule.rule == tenant_prefix or rule.rule.startswith(tenant_prefix + "/"):
                self._add_copy(rule, rule.rule[len(tenant_prefix):])
                continue
            super().add(rule)
            if rule.rule.startswith(self.PREFIX + "/") and not rule.build_only:
                self._originals.setdefault((rule.rule, rule.endpoint), []).append(rule)

    def _add_copy(self, rule: Rule, rest: str) -> None:
        prefix = f"{self.TENANT}_"
        endpoint = rule.endpoint[len(prefix):] if isinstance(rule.endpoint, str) and rule.endpoint.startswith(
            prefix) else None
        rule.bind(self)              # its own trace and converters: URLs are built as for any rule
        same = [r for r in self._originals.get((self.PREFIX + rest, endpoint), ()) if _options(r) == _options(rule)
                and id(r) not in self._tree.copies]
        if not same or not isinstance(rule, LazyBuilderRule):
            raise ValueError(f"{rule.rule} ({rule.endpoint}) copies no {self.PREFIX} rule")
        original = same[0]
        rule.forget_parts()
        rule.methods, rule.arguments = original.methods, original.arguments   # equal sets, shared
        self._tree.copies[id(original)] = rule
        self._rules_by_endpoint.setdefault(rule.endpoint, []).append(rule)
        self._remap = True


def _options(rule: Rule) -> tuple[Any, ...]:
    return (rule.methods, rule.websocket, rule.strict_slashes, rule.merge_slashes, rule.defaults,
            rule.subdomain, rule.host, rule.redirect_to, rule.alias, rule.build_only)


class TenantMatcher(StateMachineMatcher):
    """werkzeug's matcher whose state for the segment ``tenant`` after ``prefix`` is rebuilt at each update
    from the prefix's state: the same transitions, each rule replaced by its copy (``copies``, by the
    original's id), states without a copy left out; unchanged parts of the tree are shared."""

    def __init__(self, merge_slashes: bool, prefix: str, tenant: str) -> None:
        super().__init__(merge_slashes)
        self.segments = ["", *prefix.split("/")]   # the domain part (no subdomains here), then the path's
        self.tenant = tenant
        self.copies: dict[int, Rule] = {}
        self.matches: dict[tuple[str, str, str, bool], tuple[Rule, dict[str, Any]]] = {}

    def match(self, domain: str, path: str, method: str, websocket: bool) -> tuple[Rule, Any]:
        key = (domain, path, method, websocket)
        kept = self.matches.get(key)
        if kept is not None:
            return kept[0], dict(kept[1])
        rule, values = super().match(domain, path, method, websocket)   # raises as before
        if len(path) <= KEPT_PATH_LENGTH:
            if len(self.matches) >= MATCHES_KEPT:
                del self.matches[next(iter(self.matches))]   # the oldest
            self.matches[key] = (rule, dict(values))
        return rule, values

    def update(self) -> None:
        self.matches.clear()
        state: State | None = self._root
        for segment in self.segments:
            state = state.static.get(segment) if state is not None else None
        if state is not None:
            state.static.pop(self.tenant, None)
        super().update()
        if state is not None:
            tenant = self._copy(state)
            if tenant is not None:
                state.static[self.tenant] = tenant

    def _copy(self, state: State) -> State | None:
        rules = [self.copies[id(rule)] for rule in state.rules if id(rule) in self.copies]
        static = dict(_copies(self._copy, state.static.items()))
        dynamic = list(_copies(self._copy, state.dynamic))
        if not (rules or static or dynamic):
            return None
        return State(dynamic=dynamic, rules=rules, static=static)


def _copies(copy: Callable[[State], State | None],
            transitions: Iterable[tuple[Any, State]]) -> Iterable[tuple[Any, State]]:
    for key, state in transitions:
        copied = copy(state)
        if copied is not None:
            yield key, copied
