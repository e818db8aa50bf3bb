"""Errors that describe a problem the user can fix; the CLI prints them without a traceback."""


class ScoringError(Exception):
    """Base class for expected, user-facing failures."""


class ConfigError(ScoringError):
    """An environment variable or command-line value is invalid."""


class RawDataError(ScoringError):
    """A raw input file is missing, unreadable or does not match the expected schema."""


class MissingInputError(ScoringError):
    """An input that a step needs has not been produced yet."""
