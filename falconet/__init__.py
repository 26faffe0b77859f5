"""Falconet: Kestra flows in one lightweight Python process."""
__version__ = "0.1.0"
