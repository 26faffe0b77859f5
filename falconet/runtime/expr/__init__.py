"""Kestra's Pebble expression dialect on Jinja2's sandbox; the public API is :mod:`falconet.runtime.expr.render`.

Modules: ``base`` (error and undefined types), ``output`` (print rules), ``pebble`` (Pebble → Jinja
translation), ``env`` (the sandboxed environment, attribute lookup, operator helpers), ``registry``,
``filters`` and ``filters_data`` (filters and tests), ``functions``, ``dates`` (Java date patterns), ``jq`` and
``jq_runtime`` (a pure-Python jq subset).
"""
