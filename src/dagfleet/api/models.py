"""Request and response bodies of the REST API: the OpenAPI schema is generated from these."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dagfleet.control import PromoteOutcome, SyncOutcome
from dagfleet.spec import RepoSpec
from dagfleet.spec.names import check_env_name, check_repo_name


class Problem(BaseModel):
    """One thing wrong with a request or a file: which file, which field, what to do."""

    file: str
    field: str
    message: str


class ErrorBody(BaseModel):
    """Every error response: a sentence for people, and the problems for programs."""

    detail: str
    problems: list[Problem] = Field(default_factory=list)


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


class SyncOutcomeOut(BaseModel):
    location: str
    changed: bool
    commit: str | None
    previous: str | None = None
    error: str | None = None
    reason: str | None = None

    @classmethod
    def of(cls, o: SyncOutcome) -> SyncOutcomeOut:
        return cls(
            location=o.location,
            changed=o.changed,
            commit=o.commit,
            previous=o.previous,
            error=o.error,
            reason=o.reason,
        )


class SyncResult(BaseModel):
    repo: str
    outcomes: list[SyncOutcomeOut]


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

    repo: str
    source: str
    target: str
    merge: bool = False

    @field_validator("repo")
    @classmethod
    def _repo(cls, v: str) -> str:
        error = check_repo_name(v)
        if error:
            raise ValueError(error)
        return v

    @field_validator("source", "target")
    @classmethod
    def _env(cls, v: str) -> str:
        error = check_env_name(v)
        if error:
            raise ValueError(error)
        return v


class PromoteOut(BaseModel):
    repo: str
    source_env: str
    target_env: str
    commit: str
    target_branch: str
    merged: bool
    previous: str | None
    notes: list[str]

    @classmethod
    def of(cls, o: PromoteOutcome) -> PromoteOut:
        return cls(
            repo=o.repo,
            source_env=o.source_env,
            target_env=o.target_env,
            commit=o.commit,
            target_branch=o.target_branch,
            merged=o.merged,
            previous=o.previous,
            notes=list(o.notes),
        )


class HookResult(BaseModel):
    """What a webhook delivery did: the locations asked to sync, or why it was ignored."""

    accepted: bool
    provider: str
    event: str
    repo: str | None = None
    branch: str | None = None
    locations: list[str] = Field(default_factory=list)
    reason: str = ""


class Health(BaseModel):
    status: str
    detail: str = ""
