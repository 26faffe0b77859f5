"""Kestra's core plugins (io.kestra.plugin.core.*)."""
