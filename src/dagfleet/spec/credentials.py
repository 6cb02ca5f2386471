"""Per-repo git credentials (`credentials:` in repos/<name>.yaml): references, never values.

A repo file names *where* a secret is, never the secret: an HTTPS token comes from
an environment variable of dagfleet's own environment (`from_env`) or a file
(`from_file`, relative to the fleet root or absolute), the same reference style as
`environment:` entries; an SSH deploy key and its known_hosts are files. Values are
read when git runs and handed to git through its environment only (see
dagfleet.gitops.auth); nothing is written to the mirror, its URL or any log.

    credentials:
      username: x-access-token          # optional, https only
      token: {from_env: SALES_GIT_TOKEN}  # or {from_file: /run/secrets/sales-token}

    credentials:
      ssh_key_file: /run/secrets/sales-deploy-key
      ssh_known_hosts_file: /run/secrets/known_hosts  # optional
"""

from __future__ import annotations

from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    model_validator,
)

from dagfleet.spec import names

DEFAULT_USERNAME = "git"


def _checked_file(value: str) -> str:
    error = names.check_secret_file(value)
    if error:
        raise ValueError(error)
    return value


def _checked_var(value: str) -> str:
    error = names.check_env_var_name(value)
    if error:
        raise ValueError(error)
    return value


SecretPath = Annotated[str, AfterValidator(_checked_file)]
VarName = Annotated[str, AfterValidator(_checked_var)]


class SecretRef(BaseModel):
    """Where a secret value is: exactly one of an environment variable or a file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    from_env: VarName | None = None
    from_file: SecretPath | None = None

    @model_validator(mode="after")
    def _one_source(self) -> SecretRef:
        if (self.from_env is None) == (self.from_file is None):
            raise ValueError(
                "give exactly one of from_env (an environment variable holding the token) "
                "or from_file (a file holding it)"
            )
        return self

    def describe(self) -> str:
        """Where the value comes from, for messages (never the value)."""
        if self.from_env is not None:
            return f"from_env {self.from_env}"
        return f"from_file {self.from_file}"


class GitCredentials(BaseModel):
    """How dagfleet authenticates to one repo's remote: an HTTPS token or an SSH deploy key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    username: Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[^\s:@/]+$")] | None = (
        Field(
            default=None,
            description=(
                "The HTTPS user name sent with the token (default 'git'; GitHub App tokens "
                "use 'x-access-token', GitLab tokens 'oauth2')."
            ),
        )
    )
    token: SecretRef | None = Field(
        default=None,
        description="An HTTPS token or password: {from_env: VAR} or {from_file: path}.",
    )
    ssh_key_file: SecretPath | None = Field(
        default=None, description="A private SSH deploy key (a file: relative or absolute)."
    )
    ssh_known_hosts_file: SecretPath | None = Field(
        default=None,
        description="known_hosts for the SSH remote; without it, the user's ~/.ssh/known_hosts.",
    )

    @model_validator(mode="after")
    def _one_kind(self) -> GitCredentials:
        if self.token is not None and self.ssh_key_file is not None:
            raise ValueError("give either token (HTTPS) or ssh_key_file (SSH deploy key), not both")
        if self.token is None and self.ssh_key_file is None:
            raise ValueError(
                "give token (HTTPS, with an optional username) or ssh_key_file (SSH deploy key)"
            )
        if self.username is not None and self.token is None:
            raise ValueError("username goes with token; an SSH deploy key needs none")
        if self.ssh_known_hosts_file is not None and self.ssh_key_file is None:
            raise ValueError("ssh_known_hosts_file goes with ssh_key_file")
        return self

    @property
    def kind(self) -> str:
        return "https" if self.token is not None else "ssh"

    @property
    def user(self) -> str:
        return self.username or DEFAULT_USERNAME


def url_kind(url: str) -> str:
    """'https' (http or https), 'ssh' (ssh:// or scp-style), 'git' (git://, no auth)
    or 'local' (a path or file://)."""
    lower = url.lower()
    if lower.startswith(("https://", "http://")):
        return "https"
    if lower.startswith("git://"):
        return "git"
    if lower.startswith(("/", "file://")):
        return "local"
    return "ssh"


def _matches_url(value: GitCredentials, info: ValidationInfo) -> GitCredentials:
    url = info.data.get("git_url")
    if not isinstance(url, str):
        return value  # git_url itself is invalid and reported on its own
    kind = url_kind(url)
    if kind != value.kind:
        wanted = "an https:// (or http://) git_url" if value.kind == "https" else "an ssh git_url"
        given = "token" if value.kind == "https" else "ssh_key_file"
        raise ValueError(f"{given} needs {wanted}; git_url {url!r} is {kind}")
    return value


# The type of RepoSpec.credentials: also checks the credentials suit the repo's git_url
# (declared before `credentials`, so already validated when this runs).
RepoCredentials = Annotated[GitCredentials, AfterValidator(_matches_url)]
