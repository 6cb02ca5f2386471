"""Loading a fleet directory (dagfleet.spec.load): every problem, each naming file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from dagfleet.spec import SpecError, SpecProblem, load_fleet, load_repo_file, parse_repo

pytestmark = pytest.mark.unit

FLEET_OK = "name: acme\nenvironments:\n  - {name: A, branch: A}\n  - {name: B}\n"
REPO_OK = "name: sales\ngit_url: https://github.com/acme/sales.git\nmodule_name: sales.defs\n"


def make_dir(root: Path, fleet: str | None, repos: dict[str, str] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    if fleet is not None:
        (root / "fleet.yaml").write_text(fleet)
    (root / "repos").mkdir(exist_ok=True)
    for name, text in (repos or {}).items():
        (root / "repos" / name).write_text(text)
    return root


def problems_of(root: Path) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_fleet(root)
    assert str(caught.value) == "\n".join(str(p) for p in caught.value.problems)
    return [str(p) for p in caught.value.problems]


def test_valid_fleet_loads(tmp_path: Path) -> None:
    fleet = load_fleet(make_dir(tmp_path, FLEET_OK, {"sales.yaml": REPO_OK}))
    assert fleet.name == "acme"
    assert fleet.root == str(tmp_path.resolve())
    assert [e.name for e in fleet.spec.environments] == ["A", "B"]
    assert fleet.repos["sales"].code_target is not None
    assert fleet.repos["sales"].code_target.dagster_args() == [
        "-m",
        "sales.defs",
        "--working-directory",
        ".",
    ]


def test_secret_files_relative_or_absolute_and_attribute_load(tmp_path: Path) -> None:
    repo = (
        REPO_OK
        + "attribute: prod_defs\n"
        + "environment:\n"
        + "  - {name: DB, from_file: secrets/db}\n"
        + "  - {name: MOUNTED, from_file: /run/secrets/db-password}\n"
    )
    spec = load_fleet(make_dir(tmp_path, FLEET_OK, {"sales.yaml": repo})).repos["sales"]
    assert [v.from_file for v in spec.environment] == ["secrets/db", "/run/secrets/db-password"]
    assert spec.code_target is not None
    assert spec.code_target.dagster_args()[-2:] == ["-a", "prod_defs"]


def test_yml_extension_is_read_too(tmp_path: Path) -> None:
    fleet = load_fleet(make_dir(tmp_path, FLEET_OK, {"sales.yml": REPO_OK}))
    assert list(fleet.repos) == ["sales"]


@pytest.mark.parametrize(
    ("case", "fleet_text", "expected"),
    [
        (
            "bad env name",
            "environments: [{name: bad_env}]\n",
            [
                "fleet.yaml: environments[0].name: 'bad_env' is not a valid environment name: "
                "use letters, digits and '-', starting and ending with a letter or digit"
            ],
        ),
        (
            "env name too long",
            "environments: [{name: ABCDEFGHIJKLM}]\n",
            [
                "fleet.yaml: environments[0].name: 'ABCDEFGHIJKLM' is 13 characters long: "
                "use at most 12"
            ],
        ),
        (
            "duplicate env names differ only by case",
            "environments: [{name: A}, {name: a}]\n",
            [
                "fleet.yaml: environments: environment 'a' is defined twice (names are compared "
                "case-insensitively because Kubernetes lower-cases them)"
            ],
        ),
        (
            "no environments",
            "environments: []\n",
            [
                "fleet.yaml: environments: define at least one environment, "
                "e.g. [{name: A}, {name: B}]"
            ],
        ),
        (
            "unknown top-level key",
            "environments: [{name: A}]\nenviroment: x\n",
            ["fleet.yaml: enviroment: unknown key: remove it or check its spelling"],
        ),
        (
            "unknown nested key",
            "environments: [{name: A}]\ninstance: {postgres: {password: hunter2}}\n",
            [
                "fleet.yaml: instance.postgres.password: unknown key: "
                "remove it or check its spelling"
            ],
        ),
        (
            "bad env branch",
            "environments: [{name: A, branch: 'A B'}]\n",
            ["fleet.yaml: environments[0].branch: 'A B' is not a valid git ref"],
        ),
        (
            "bad env var name",
            "environments: [{name: A, env: {'A-B': x}}]\n",
            [
                "fleet.yaml: environments[0].env: 'A-B' is not a valid environment variable "
                "name: use [A-Za-z_][A-Za-z0-9_]*"
            ],
        ),
        (
            "missing env name",
            "environments: [{branch: A}]\n",
            ["fleet.yaml: environments[0].name: required: add it"],
        ),
        (
            "bad fleet name",
            "name: Acme\nenvironments: [{name: A}]\n",
            [
                "fleet.yaml: name: 'Acme' is not a valid fleet name: use lowercase letters, "
                "digits and '-', starting with a letter and ending with a letter or digit"
            ],
        ),
        (
            "postgres password_env not a var name",
            "environments: [{name: A}]\ninstance: {postgres: {password_env: 'PG PASS'}}\n",
            [
                "fleet.yaml: instance.postgres.password_env: 'PG PASS' is not a valid "
                "environment variable name: use [A-Za-z_][A-Za-z0-9_]*"
            ],
        ),
        (
            "port out of range",
            "environments: [{name: A}]\ninstance: {webserver: {port: 70000}}\n",
            ["fleet.yaml: instance.webserver.port: Input should be less than 65536"],
        ),
        (
            "not a mapping",
            "- A\n- B\n",
            ["fleet.yaml: must be a mapping of keys to values"],
        ),
        (
            "scalar document",
            "just text\n",
            ["fleet.yaml: must be a mapping of keys to values"],
        ),
    ],
)
def test_fleet_file_problems(
    tmp_path: Path, case: str, fleet_text: str, expected: list[str]
) -> None:
    assert problems_of(make_dir(tmp_path, fleet_text)) == expected


def test_missing_fleet_file_says_how_to_create_one(tmp_path: Path) -> None:
    root = tmp_path.resolve()
    assert problems_of(make_dir(root, None)) == [
        f"fleet.yaml: not found in {root}: run `dagfleet init {root}`"
    ]


@pytest.mark.parametrize("fleet_text", ["", "name: acme\n"])
def test_fleet_without_environments_is_refused(tmp_path: Path, fleet_text: str) -> None:
    problems = problems_of(make_dir(tmp_path, fleet_text))
    assert any(p.startswith("fleet.yaml: environments: define at least one") for p in problems)


@pytest.mark.parametrize(
    ("case", "file", "text", "expected"),
    [
        (
            "bad branch",
            "sales.yaml",
            "name: sales\ngit_url: /srv/sales.git\nbranch: 'A B'\n",
            ["repos/sales.yaml: branch: 'A B' is not a valid git ref"],
        ),
        (
            "branch starting with -",
            "sales.yaml",
            "name: sales\ngit_url: /srv/sales.git\nbranch: --upload-pack=x\n",
            [
                "repos/sales.yaml: branch: '--upload-pack=x' is not a valid git ref: "
                "it must not be empty or start with '-'"
            ],
        ),
        (
            "branch with ..",
            "sales.yaml",
            "name: sales\ngit_url: /srv/sales.git\nbranches: {A: 'a..b'}\n",
            ["repos/sales.yaml: branches: 'a..b' is not a valid git ref"],
        ),
        (
            "branch with @{",
            "sales.yaml",
            "name: sales\ngit_url: /srv/sales.git\nbranches: {A: 'x@{1}'}\n",
            ["repos/sales.yaml: branches: 'x@{1}' is not a valid git ref"],
        ),
        (
            "bad env name in branches",
            "sales.yaml",
            "name: sales\ngit_url: /srv/sales.git\nbranches: {a_b: main}\n",
            [
                "repos/sales.yaml: branches: 'a_b' is not a valid environment name: use "
                "letters, digits and '-', starting and ending with a letter or digit"
            ],
        ),
        (
            "bad pin",
            "sales.yaml",
            "name: sales\ngit_url: /srv/sales.git\npins: {A: 'v 1'}\n",
            ["repos/sales.yaml: pins: 'v 1' is not a valid git ref"],
        ),
        (
            "ext url",
            "sales.yaml",
            "name: sales\ngit_url: 'ext::sh -c touch% /tmp/pwned'\n",
            [
                "repos/sales.yaml: git_url: 'ext::sh -c touch% /tmp/pwned' uses a git remote "
                "helper transport (like ext::), which can run commands: use a path, file://, "
                "https:// or ssh URL"
            ],
        ),
        (
            "url starting with -",
            "sales.yaml",
            "name: sales\ngit_url: '-oProxyCommand=x'\n",
            [
                "repos/sales.yaml: git_url: '-oProxyCommand=x' is not a valid git URL: "
                "it must not start with '-'"
            ],
        ),
        (
            "relative url",
            "sales.yaml",
            "name: sales\ngit_url: ../sales.git\n",
            [
                "repos/sales.yaml: git_url: '../sales.git' is not a supported git URL: "
                "use an absolute path, file://, https:// or ssh URL"
            ],
        ),
        (
            "python_file leaves the repo",
            "sales.yaml",
            "name: sales\ngit_url: /srv/sales.git\npython_file: ../x.py\n",
            ["repos/sales.yaml: python_file: '../x.py' leaves the repository: remove '..'"],
        ),
        (
            "absolute working_directory",
            "sales.yaml",
            "name: sales\ngit_url: /srv/sales.git\nworking_directory: /etc\n",
            [
                "repos/sales.yaml: working_directory: '/etc' is absolute: give a path "
                "relative to the repository root"
            ],
        ),
        (
            "NUL in s3_prefix",
            "sales.yaml",
            'name: sales\ngit_url: /srv/sales.git\ns3_prefix: "a\\0b"\n',
            ["repos/sales.yaml: s3_prefix: the path contains a NUL byte"],
        ),
        (
            "bad module name",
            "sales.yaml",
            "name: sales\ngit_url: /srv/sales.git\nmodule_name: sales-defs\n",
            ["repos/sales.yaml: module_name: 'sales-defs' is not a valid Python module name"],
        ),
        (
            "two code targets",
            "sales.yaml",
            "name: sales\ngit_url: /srv/sales.git\nmodule_name: a\npython_file: b.py\n",
            [
                "repos/sales.yaml: give at most one of python_file, module_name and "
                "package_name (none lets dagfleet read [tool.dg]/[tool.dagster] or "
                "workspace.yaml)"
            ],
        ),
        (
            "env var with no source",
            "sales.yaml",
            "name: sales\ngit_url: /srv/sales.git\nenvironment: [{name: X}]\n",
            [
                "repos/sales.yaml: environment[0]: X: give exactly one of value, from_env (an "
                "environment variable holding the secret) or from_file (a file holding it)"
            ],
        ),
        (
            "env var with two sources",
            "sales.yaml",
            "name: sales\ngit_url: /srv/sales.git\n"
            "environment: [{name: X, value: a, from_file: /run/secrets/x}]\n",
            [
                "repos/sales.yaml: environment[0]: X: give exactly one of value, from_env (an "
                "environment variable holding the secret) or from_file (a file holding it)"
            ],
        ),
        (
            "from_file leaves the fleet root",
            "sales.yaml",
            "name: sales\ngit_url: /srv/sales.git\n"
            "environment: [{name: X, from_file: ../../etc/shadow}]\n",
            [
                "repos/sales.yaml: environment[0].from_file: '../../etc/shadow' contains '..': "
                "give a path under the fleet root, or the absolute path of the mounted secret "
                "(e.g. /run/secrets/db-password)"
            ],
        ),
        (
            "absolute from_file climbing out",
            "sales.yaml",
            "name: sales\ngit_url: /srv/sales.git\n"
            "environment: [{name: X, from_file: /run/secrets/../../etc/shadow}]\n",
            [
                "repos/sales.yaml: environment[0].from_file: '/run/secrets/../../etc/shadow' "
                "contains '..': give a path under the fleet root, or the absolute path of the "
                "mounted secret (e.g. /run/secrets/db-password)"
            ],
        ),
        (
            "from_file starting with -",
            "sales.yaml",
            "name: sales\ngit_url: /srv/sales.git\nenvironment: [{name: X, from_file: -x}]\n",
            [
                "repos/sales.yaml: environment[0].from_file: '-x' must not start with '-': "
                "write ./-x for a file in the fleet root"
            ],
        ),
        (
            "NUL in from_file",
            "sales.yaml",
            'name: sales\ngit_url: /srv/sales.git\nenvironment: [{name: X, from_file: "a\\0b"}]\n',
            ["repos/sales.yaml: environment[0].from_file: the path contains a NUL byte"],
        ),
        (
            "attribute is not a variable name",
            "sales.yaml",
            "name: sales\ngit_url: /srv/sales.git\nmodule_name: sales.defs\nattribute: -h\n",
            [
                "repos/sales.yaml: attribute: '-h' is not a valid attribute: give the name of "
                "a Python variable in the loaded module, e.g. defs"
            ],
        ),
        (
            "env var set twice",
            "sales.yaml",
            "name: sales\ngit_url: /srv/sales.git\n"
            "environment: [{name: X, value: a}, {name: X, from_env: Y}]\n",
            ["repos/sales.yaml: environment: X is set twice: keep one entry"],
        ),
        (
            "env var unknown key",
            "sales.yaml",
            "name: sales\ngit_url: /srv/sales.git\n"
            "environment: [{name: X, value: a, secret: true}]\n",
            [
                "repos/sales.yaml: environment[0].secret: unknown key: "
                "remove it or check its spelling"
            ],
        ),
        (
            "bad from_env",
            "sales.yaml",
            "name: sales\ngit_url: /srv/sales.git\nenvironment: [{name: X, from_env: 'A B'}]\n",
            [
                "repos/sales.yaml: environment[0].from_env: 'A B' is not a valid environment "
                "variable name: use [A-Za-z_][A-Za-z0-9_]*"
            ],
        ),
        (
            "unknown key",
            "sales.yaml",
            "name: sales\ngit_url: /srv/sales.git\nbrnach: main\n",
            ["repos/sales.yaml: brnach: unknown key: remove it or check its spelling"],
        ),
        (
            "missing git_url",
            "sales.yaml",
            "name: sales\n",
            ["repos/sales.yaml: git_url: required: add it"],
        ),
        (
            "missing name",
            "sales.yaml",
            "git_url: /srv/sales.git\n",
            ["repos/sales.yaml: name: required: add it"],
        ),
        (
            "empty file",
            "sales.yaml",
            "",
            [
                "repos/sales.yaml: name: required: add it",
                "repos/sales.yaml: git_url: required: add it",
            ],
        ),
        (
            "uppercase repo name",
            "Sales.yaml",
            "name: Sales\ngit_url: /srv/sales.git\n",
            [
                "repos/Sales.yaml: name: 'Sales' is not a valid repo name: use lowercase "
                "letters, digits and '-', starting with a letter and ending with a letter or digit"
            ],
        ),
        (
            "repo name too long",
            "r" * 41 + ".yaml",
            f"name: {'r' * 41}\ngit_url: /srv/sales.git\n",
            [f"repos/{'r' * 41}.yaml: name: '{'r' * 41}' is 41 characters long: use at most 40"],
        ),
        (
            "reserved name",
            "playground.yaml",
            "name: playground\ngit_url: /srv/sales.git\n",
            ["repos/playground.yaml: name: 'playground' is reserved for playground locations"],
        ),
        (
            "name does not match file",
            "sales.yaml",
            "name: marketing\ngit_url: /srv/sales.git\n",
            ["repos/sales.yaml: name: 'marketing' must match the file name 'sales'"],
        ),
        (
            "resources out of range and unknown",
            "sales.yaml",
            "name: sales\ngit_url: /srv/sales.git\nresources: {cpu: 0, gpu: 1}\n",
            [
                "repos/sales.yaml: resources.cpu: Input should be greater than 0",
                "repos/sales.yaml: resources.gpu: unknown key: remove it or check its spelling",
            ],
        ),
        (
            "not a mapping",
            "sales.yaml",
            "- name: sales\n",
            ["repos/sales.yaml: must be a mapping of keys to values"],
        ),
    ],
)
def test_repo_file_problems(
    tmp_path: Path, case: str, file: str, text: str, expected: list[str]
) -> None:
    assert problems_of(make_dir(tmp_path, FLEET_OK, {file: text})) == expected


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("name: sales\n  git_url: [\n", "line 2, column 10"),
        ("name: sales\ngit_url: /x\nbranch: [A\n", "line 4, column 1"),
        ("\tname: sales\n", "line 1, column 1"),
        ("name: sales\ngit_url: 'unterminated\n", "line 3, column 1"),
    ],
)
def test_yaml_syntax_error_names_line_and_column(tmp_path: Path, text: str, where: str) -> None:
    (problem,) = problems_of(make_dir(tmp_path, FLEET_OK, {"sales.yaml": text}))
    assert problem.startswith(f"repos/sales.yaml: {where}: invalid YAML: ")


def test_same_repo_name_twice_is_reported_on_the_second_file(tmp_path: Path) -> None:
    root = make_dir(tmp_path, FLEET_OK, {"sales.yaml": REPO_OK, "sales.yml": REPO_OK})
    assert problems_of(root) == ["repos/sales.yml: name: 'sales' is already defined"]


@pytest.mark.parametrize(
    ("key", "text", "field"),
    [
        ("branches", "branches: {C: main}", "branches.C"),
        ("pins", "pins: {C: v1.0}", "pins.C"),
        ("environments", "environments: [A, C]", "environments.C"),
        ("branches case-sensitive", "branches: {a: main}", "branches.a"),
    ],
)
def test_repo_environments_must_exist_in_the_fleet(
    tmp_path: Path, key: str, text: str, field: str
) -> None:
    repo = f"{REPO_OK}{text}\n"
    assert problems_of(make_dir(tmp_path, FLEET_OK, {"sales.yaml": repo})) == [
        f"repos/sales.yaml: {field}: unknown environment; known environments: A, B"
    ]


def test_every_problem_of_a_broken_fleet_is_reported_at_once(tmp_path: Path) -> None:
    root = make_dir(
        tmp_path,
        "name: acme\nenvironments: [{name: A}, {name: B}]\nwebserver: {port: 1}\n",
        {
            "broken.yaml": "name: broken\n  git_url: [\n",
            "sales.yaml": "name: sales\ngit_url: /srv/sales.git\nbranch: 'A B'\n",
            "typo.yaml": "name: typo\ngit_url: /srv/t.git\nmodule: x\n",
            "wrong.yaml": "name: right\ngit_url: /srv/w.git\n",
        },
    )
    assert problems_of(root) == [
        "fleet.yaml: webserver: unknown key: remove it or check its spelling",
        "repos/broken.yaml: line 2, column 10: invalid YAML: "
        "mapping values are not allowed in this context",
        "repos/sales.yaml: branch: 'A B' is not a valid git ref",
        "repos/typo.yaml: module: unknown key: remove it or check its spelling",
        "repos/wrong.yaml: name: 'right' must match the file name 'wrong'",
    ]


def test_cross_checks_run_alongside_other_repo_problems(tmp_path: Path) -> None:
    root = make_dir(
        tmp_path,
        FLEET_OK,
        {
            "sales.yaml": "name: sales\ngit_url: /srv/sales.git\nbranch: 'A B'\n",
            "zz.yaml": "name: zz\ngit_url: /srv/zz.git\npins: {C: v1}\n",
        },
    )
    assert problems_of(root) == [
        "repos/sales.yaml: branch: 'A B' is not a valid git ref",
        "repos/zz.yaml: pins.C: unknown environment; known environments: A, B",
    ]


def test_duplicate_environments_reported_alongside_a_bad_name(tmp_path: Path) -> None:
    root = make_dir(tmp_path, "environments: [{name: A}, {name: a}, {name: bad_env}]\n")
    problems = problems_of(root)
    assert any("'bad_env' is not a valid environment name" in p for p in problems)
    assert any("is defined twice" in p for p in problems)


def test_colliding_location_names_are_refused(tmp_path: Path) -> None:
    root = make_dir(
        tmp_path,
        "environments: [{name: eu-prod}, {name: prod}]\n",
        {
            "sales.yaml": "name: sales\ngit_url: /srv/a.git\nenvironments: [eu-prod]\n",
            "sales-eu.yaml": "name: sales-eu\ngit_url: /srv/b.git\nenvironments: [prod]\n",
        },
    )
    problems = problems_of(root)
    assert any("sales-eu-prod" in p for p in problems)


def test_load_repo_file_and_parse_repo(tmp_path: Path) -> None:
    path = tmp_path / "sales.yaml"
    path.write_text(REPO_OK)
    assert load_repo_file(path).git_url == "https://github.com/acme/sales.git"
    with pytest.raises(SpecError) as caught:
        parse_repo({"name": "playground", "git_url": "/x", "extra": 1}, "api body")
    assert [str(p) for p in caught.value.problems] == [
        "api body: extra: unknown key: remove it or check its spelling"
    ]
    with pytest.raises(SpecError) as caught:
        parse_repo({"name": "playground", "git_url": "/x"}, "api body")
    assert caught.value.problems == [
        SpecProblem("api body", "name", "'playground' is reserved for playground locations")
    ]


def test_problem_without_field_omits_it() -> None:
    assert str(SpecProblem("fleet.yaml", "", "broken")) == "fleet.yaml: broken"
    assert str(SpecProblem("fleet.yaml", "name", "broken")) == "fleet.yaml: name: broken"
