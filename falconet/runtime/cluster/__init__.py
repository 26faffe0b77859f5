"""Cluster mode: several Falconet servers (nodes) sharing one PostgreSQL database."""
