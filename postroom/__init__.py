"""postroom: document generation and output-channel hub."""

__version__ = "0.1.0"
