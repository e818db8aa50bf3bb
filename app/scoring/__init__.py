"""Daily conversion scoring for users of a real-estate portal."""

__version__ = "0.1.0"
