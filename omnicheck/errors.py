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
