"""What every answer is built from: the ``{"success", "data"}`` envelope, camelCase objects,
times as ISO 8601 with a ``Z``, pagination, a confirmation message."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, PlainSerializer
from pydantic.alias_generators import to_camel

from engine.models.base import iso

T = TypeVar("T")


#: A time as the API writes it: ISO 8601 in UTC with a ``Z``.
Time = Annotated[datetime | None, PlainSerializer(iso, return_type=str | None)]


class WireModel(BaseModel):
    """An answer's object: snake_case in Python, camelCase on the wire; a domain object whose
    attributes bear the fields' names validates as it is (``model_validate(obj)``)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)


class Envelope(BaseModel, Generic[T]):
    """``{"success": true, "data": …}``: every success of the campaigns API."""

    success: Literal[True] = True
    data: T


def ok(data: Any) -> dict[str, Any]:
    """The success envelope around ``data`` (a declared answer model, or a list of them)."""
    return {"success": True, "data": data}


class Message(BaseModel):
    """A confirmation: ``{"message": "Campaign deleted successfully"}``."""

    message: str


class Pagination(BaseModel):
    """The campaigns API's ``pagination``."""

    page: int
    limit: int
    total: int
    pages: int

    @classmethod
    def of(cls, page: int, limit: int, total: int) -> Pagination:
        """Page ``page`` of ``limit`` items out of ``total``."""
        return cls(page=page, limit=limit, total=total, pages=-(-total // limit))


class Validation(BaseModel):
    """Whether a touchpoint can be sent as configured, and why not."""

    valid: bool
    errors: list[Any]
