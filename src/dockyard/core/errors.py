"""Domain errors, each carrying its HTTP meaning as data.

The tree::

    DockyardError (500)
    ├── BadRequest (400)
    │   ├── FilterError        invalid CIMI filter
    │   └── ValidationError    a document does not satisfy its schema
    ├── Forbidden (403)        Nuvla never answers 401
    ├── NotFound (404)
    │   └── UnknownAction
    ├── MethodNotAllowed (405)
    ├── NotAcceptable (406)
    ├── Conflict (409)
    ├── PayloadTooLarge (413)
    └── InsufficientStorage (507)  the disk under the database or the object store is full

The server turns any of them into Nuvla's error body ``{status, message, resource-id?}``.
"""

from __future__ import annotations


class DockyardError(Exception):
    status = 500

    def __init__(self, message: str, resource_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.resource_id = resource_id

    def body(self) -> dict[str, object]:
        out: dict[str, object] = {"status": self.status, "message": self.message}
        if self.resource_id:
            out["resource-id"] = self.resource_id
        return out


class BadRequest(DockyardError):
    status = 400


class FilterError(BadRequest):
    """A CIMI filter that does not parse, or that the store refuses to run."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"Invalid CIMI filter. {detail}")


class ValidationError(BadRequest):
    def __init__(self, resource_id: str, explanation: str) -> None:
        super().__init__(
            f"resource {resource_id} does not satisfy defined schema:\n{explanation}", resource_id
        )
        self.explanation = explanation


class Forbidden(DockyardError):
    status = 403

    @classmethod
    def for_resource(cls, resource_id: str | None) -> "Forbidden":
        if resource_id is None:
            return cls("credentials required")
        return cls(f"invalid credentials for '{resource_id}'", resource_id)


class NotFound(DockyardError):
    status = 404

    @classmethod
    def for_resource(cls, resource_id: str) -> "NotFound":
        return cls(f"{resource_id} not found", resource_id)


class UnknownAction(NotFound):
    pass


class MethodNotAllowed(DockyardError):
    status = 405


class NotAcceptable(DockyardError):
    status = 406


class Conflict(DockyardError):
    status = 409

    @classmethod
    def for_resource(cls, resource_id: str) -> "Conflict":
        return cls(f"conflict with {resource_id}", resource_id)


class PayloadTooLarge(DockyardError):
    status = 413


class InsufficientStorage(DockyardError):
    """A write that found no space left: nothing was stored, and the same write works once space is freed."""

    status = 507
