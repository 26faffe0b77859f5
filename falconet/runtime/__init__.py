"""The engine kernel: flow model, validation, expressions, state machine, actors, store, storage.

Imports no HTTP code.
"""
