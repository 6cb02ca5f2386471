"""The deploy repository's record (release/record.py): commits.yaml, render.yaml, status."""

from __future__ import annotations

import pytest

from dagfleet.release import record as rec
from dagfleet.release.deployrepo import DeployRepo
from dagfleet.render.options import K8sOptions
from dagfleet.status import LocationStatus

SHA1 = "1" * 40
SHA2 = "2" * 40


def test_commits_round_trip_sorted_and_stable() -> None:
    record = {
        "demo-B": rec.Released("demo-B", "demo", "B", SHA2),
        "demo-A": rec.Released("demo-A", "demo", "A", SHA1),
    }
    text = rec.dump_commits(record)
    assert text.index("demo-A") < text.index("demo-B")
    assert text.startswith("# Which commit each location serves")
    assert rec.parse_commits(text) == record
    assert rec.dump_commits(rec.parse_commits(text)) == text  # same bytes: no new git commit


def test_commits_absent_is_empty() -> None:
    assert rec.parse_commits(None) == {} and rec.parse_commits("") == {}


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("locations: [", "not valid YAML"),
        ("- a\n", "needs a `locations:` mapping"),
        ("locations:\n  demo-A: {repo: demo, env: A}\n", "locations.demo-A: needs repo, env"),
    ],
)
def test_commits_errors_name_the_file_and_fix(text: str, says: str) -> None:
    with pytest.raises(rec.RecordError) as err:
        rec.parse_commits(text)
    assert str(err.value).startswith("commits.yaml: ") and says in str(err.value)


def test_render_options_from_render_yaml() -> None:
    assert rec.render_options(None) == K8sOptions()
    opts = rec.render_options(
        "registry: registry.example.com/data\nimage-tag: v1.2.3\ncnpg: false\n"
    )
    assert opts.registry == "registry.example.com/data"
    assert opts.image_tag == "v1.2.3" and opts.cnpg is False


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("imagetag: v1\n", "imagetag: not a render option"),
        ("cnpg: 'no'\n", "cnpg: expected a bool"),
        ("commits: {demo-A: x}\n", "commits: not a render option"),  # release owns it
        ("[1]\n", "needs a mapping"),
    ],
)
def test_render_options_errors(text: str, says: str) -> None:
    with pytest.raises(rec.RecordError) as err:
        rec.render_options(text)
    assert str(err.value).startswith("render.yaml: ") and says in str(err.value)


def test_with_commits_pins_every_recorded_location() -> None:
    record = {"demo-A": rec.Released("demo-A", "demo", "A", SHA1)}
    assert dict(rec.with_commits(K8sOptions(image_tag="v1"), record).commits) == {"demo-A": SHA1}


def test_accepted_then_rejected_keeps_the_released_commit_ready() -> None:
    st = rec.accepted_status(None, "demo-A", "demo", "A", "A", SHA1)
    assert st.commit == SHA1 and st.last_good_commit == SHA1 and st.ready
    again = rec.accepted_status(st, "demo-A", "demo", "A", "A", SHA1)
    assert rec.status_text(again) == rec.status_text(st)  # a repeat writes the same bytes

    bad = rec.rejected_status(
        st, "demo-A", "demo", "A", "A", SHA2, "DefinitionsInvalid", "SyntaxError: x"
    )
    assert bad.commit == SHA1 and bad.ready  # last good wins
    assert bad.failures == st.failures + 1 == 1  # the API's dagfleet_location_sync_failures
    synced = bad.condition("Synced")
    assert synced is not None and synced.status == "False"
    assert (
        synced.reason == "DefinitionsInvalid" and synced.message == f"{SHA2[:12]}: SyntaxError: x"
    )
    # The same commit rejected again for the same reason (another temp path in the
    # message) changes nothing.
    repeat = rec.rejected_status(
        bad, "demo-A", "demo", "A", "A", SHA2, "DefinitionsInvalid", "SyntaxError: y"
    )
    assert rec.status_text(repeat) == rec.status_text(bad)


def test_rejected_without_a_release_is_not_ready() -> None:
    st = rec.rejected_status(
        None, "demo-A", "demo", "A", "A", SHA1, "DependencyInstallFailed", f"{SHA1[:12]}: no"
    )
    assert not st.ready and st.commit is None
    assert LocationStatus.model_validate_json(rec.status_text(st)) == st


def test_render_settings_flux_and_k8s() -> None:
    assert rec.render_settings("image_tag: v1\n") == rec.RenderSettings(K8sOptions(image_tag="v1"))
    for missing in (None, "", "registry: registry.example.com/x\n"):
        with pytest.raises(rec.RecordError, match="image_tag: required") as err:
            rec.render_settings(missing)
        assert "never deploys `latest`" in str(err.value)
    got = rec.render_settings(
        "flux-repo-url: ssh://git@git.example.com/platform/deploy.git\n"
        "flux_interval: 1m\nimage_tag: v2\n"
    )
    assert got.flux_repo_url == "ssh://git@git.example.com/platform/deploy.git"
    assert got.flux_interval == "1m" and got.k8s.image_tag == "v2"
    with pytest.raises(rec.RecordError, match=r"render\.yaml: flux_interval: expected a non-empty"):
        rec.render_settings("image_tag: v1\nflux_interval: 5\n")
    with pytest.raises(rec.RecordError, match="flux_repo_url"):  # listed among the known ones
        rec.render_settings("image_tag: v1\nfluxurl: x\n")


def test_render_yaml_turns_in_cluster_releases_on_into_this_branch_and_path() -> None:
    """`deploy_repo` in render.yaml: the rendered in-cluster dagfleet releases into the
    branch and path of the release writing it, never others (those are release-owned)."""
    url = "ssh://git@git.example.com/platform/deploy.git"
    opts = rec.render_options(f"image_tag: v1\ndeploy_repo: {url}\n")
    got = rec.with_deploy(opts, DeployRepo("file:///x.git", "prod", "clusters/prod"))
    assert (got.deploy_repo, got.deploy_branch, got.deploy_path) == (url, "prod", "clusters/prod")
    plain = rec.render_options("image_tag: v1\n")
    assert rec.with_deploy(plain, DeployRepo("file:///x.git", "prod", "c")) == plain
    for owned in ("deploy_branch: b", "deploy_path: p"):
        with pytest.raises(rec.RecordError, match="not a render option"):
            rec.render_options(f"image_tag: v1\n{owned}\n")
