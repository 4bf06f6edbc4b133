"""archive-catalog: a self-hosted catalog server for a local media archive."""

__version__ = "0.1.0"
