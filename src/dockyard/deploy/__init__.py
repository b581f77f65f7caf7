"""The app → engine path: what a deployment is and does, whoever asks (the API, the UI, a worker).

- :mod:`.contract`: what every container of a deployment receives (environment, names, labels) and the
  parameters it finds before it starts;
- :mod:`.plan`: a deployment's module content → the task specs its engine runs;
- :mod:`.data`: what the deployment may read, and the buckets mounted into its containers;
- :mod:`.observe`: how the engine's view of a task becomes the deployment's state and parameters.

It sits between ``jobs/`` (threads, leases, the queue) and ``resources/`` (the documents), and returns domain
results: ``resources/`` does not import it. An expected failure on this path raises :class:`Failed`, which
keeps the reason and whether trying again may help (a driver's ``DriverError`` passes both on).
"""

from __future__ import annotations


class Failed(Exception):
    """An expected failure of a deployment's step, with a message for its user.

    ``reason`` is a short label (a driver's, e.g. ``engine-unavailable``); ``recoverable`` says whether
    trying again may help, as the engine said (``DriverError.recoverable``), not as the caller guesses.
    """

    def __init__(self, message: str, *, reason: str = "failed", recoverable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.recoverable = recoverable

    @classmethod
    def of(cls, exc: "Exception", prefix: str = "") -> "Failed":
        """The failure a driver's or a store's error means here, keeping its reason and retryability."""
        return cls(prefix + getattr(exc, "message", str(exc)), reason=getattr(exc, "reason", "failed"),
                   recoverable=bool(getattr(exc, "recoverable", False)))
