"""chatstream: the open event backbone for AI chat products."""

__version__ = "0.1.0"
