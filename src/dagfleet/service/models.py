"""What the service hands back, and what the REST API's OpenAPI schema is generated from.

The CLI reads the same shapes whether it talks to a running fleet or to the
fleet files, so every model here is shared by both front doors.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from dagfleet.control import SyncOutcome
from dagfleet.spec import RepoSpec
from dagfleet.spec.models import EnvName, RepoName


class Problem(BaseModel):
    """One thing wrong with a request or a file: which file, which field, what to do."""

    file: str
    field: str
    message: str


class ErrorBody(BaseModel):
    """Every error response: a sentence for people, and the problems for programs."""

    detail: str
    problems: list[Problem] = Field(default_factory=list)


class FleetIdentity(BaseModel):
    """Which fleet answers: its name (fleet.yaml), a stable id and its directory.

    The id is made once per fleet directory and kept in its state directory, so two
    fleets with the same name (every `dagfleet init` is called "dagfleet") differ.
    """

    name: str
    id: str
    root: str
    version: str


class RepoResource(BaseModel):
    """A registered repo: its spec as stored, its file's ETag and its location names."""

    name: str
    etag: str
    suspended: bool
    locations: list[str]
    spec: RepoSpec


class DeleteResult(BaseModel):
    name: str
    purged: bool
    purged_paths: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


class SyncResult(BaseModel):
    repo: str
    outcomes: list[SyncOutcome]

    @property
    def failed(self) -> list[SyncOutcome]:
        return [o for o in self.outcomes if o.error]


class EnvironmentOut(BaseModel):
    """An environment; variable values stay out of the API, only their names are shown."""

    name: str
    branch: str | None
    debug: bool
    playground: bool
    variables: list[str]
    locations: list[str]


class PromoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    repo: RepoName
    source: EnvName
    target: EnvName
    merge: bool = False
