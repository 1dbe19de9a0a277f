"""evolora: adapt and compose small language models with populations of agents."""

__version__ = "0.1.0"
