"""Kestra's Pebble expression dialect on Jinja2's sandbox; the public API is :mod:`falconet.runtime.expressions`.

Modules: ``base`` (error and undefined types), ``output`` (print rules), ``pebble`` (Pebble → Jinja
translation), ``env`` (the sandboxed environment and attribute lookup), ``dates`` (Java date patterns),
``filters``, ``functions``, ``jq`` (a pure-Python jq subset).
"""
