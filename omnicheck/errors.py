"""One error family. Every message is one line: what is wrong, then how to fix it."""

from __future__ import annotations


class OmnicheckError(Exception):
    """Base class: str(err) is the one line a user sees."""

    def __init__(self, cause: str, fix: str = ""):
        self.cause = cause
        self.fix = fix
        super().__init__(f"{cause} -- fix: {fix}" if fix else cause)


class UsageError(OmnicheckError):
    """Bad options or configuration: reported as a pytest usage error before anything runs."""


class ModelLoadError(OmnicheckError):
    """A variant cannot be loaded: fails that variant's tests only."""


class UnsupportedModality(OmnicheckError):
    """The model has no input for this modality: the probe is skipped, never failed."""


class FixtureError(OmnicheckError):
    """Probe data is missing or does not match its manifest."""


class BackendError(OmnicheckError):
    """A server or runtime failed while generating."""


def first_line(err: BaseException, limit: int = 300) -> str:
    """An exception's first line, cut at `limit` characters (its type's name when it says nothing): for a
    library's error inside one of ours, whose later lines are a traceback or a dump."""
    lines = str(err).strip().splitlines()
    return lines[0][:limit] if lines else type(err).__name__


def one_line(text: str, limit: int = 300) -> str:
    """Any text on one line, every run of whitespace one space, cut at `limit` with '...': for a server's or a
    log's own words, whose later lines still say something."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
