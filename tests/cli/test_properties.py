"""Property-based: every flag and every plano.yml field, given anything (hostile
snippets, random text, numbers, lists, nulls). For every input:

- the exit code is one of 0/1/2/3/4 and nothing prints a traceback;
- when the command fails, the infra is byte-identical;
- when it succeeds, the rendered tree passes `compose config` (dev and prod), gixy
  and `sh -n`, has the structure a harmless value gives (compose keys, env keys,
  nginx directives), and no secret value appears outside the git-ignored files or
  in the output.

CI runs a fixed set of examples (derandomized); PLANO_PROPERTY_EXAMPLES=2000 runs
more. Each test prints how many inputs ran and how they ended.
"""

from __future__ import annotations

import collections
import contextlib
import io
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from plano.cli.main import main
from plano.core import fields
from plano.core import naming as n
from plano.core.files import tree_digest
from plano.core.runner import SubprocessRunner
from plano.core.secrets import read_env
from plano.ops import check

EXAMPLES = int(os.environ.get("PLANO_PROPERTY_EXAMPLES", "120"))
SETTINGS = settings(max_examples=EXAMPLES, derandomize=not os.environ.get("PLANO_PROPERTY_RANDOM"), deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))
EXIT_CODES = {0, 1, 2, 3, 4}
IGNORED = {n.ENV_BASE, n.ENV_DEV, n.ENV_PROD}  # git-ignored: the secrets' own files

SNIPPETS = [
    "", " ", "\n", "\t", "\r\n", "\x00", "$", "$$", "${POSTGRES_PASSWORD}", "$HOME", "${X:-y}", "'", '"', "`id`", "$(id)", ";", "&&",
    "#", "{", "}", "\\", "-", "--upload-pack=touch /tmp/pwned", "..", "/", "//", ":", "@", "=", "é", "٣", "\u202e", "x" * 300,
    "app1", "app2.example.com", "/api", "1.2.3", "ops@example.com", "../app1/backend", "registry.example.com/acme", "3000",
]
text = st.one_of(
    st.sampled_from(SNIPPETS),
    st.tuples(st.sampled_from(SNIPPETS), st.sampled_from(SNIPPETS)).map("".join),
    st.text(max_size=24),
    st.text(alphabet="abcdefghij0123456789-._/:@$ \n", max_size=24),
)


def near(valid: str):
    """Values around a valid one: a snippet before or after it, or a character changed."""
    return st.one_of(
        st.tuples(st.just(valid), st.sampled_from(SNIPPETS)).map("".join),
        st.tuples(st.sampled_from(SNIPPETS), st.just(valid)).map("".join),
        st.tuples(st.integers(0, max(len(valid) - 1, 0)), st.characters()).map(lambda t: valid[:t[0]] + t[1] + valid[t[0] + 1:]),
    )


anything = st.one_of(text, st.integers(min_value=-(10 ** 6), max_value=10 ** 6), st.just(10 ** 45), st.booleans(), st.none(),
                     st.floats(allow_nan=True), st.lists(text, max_size=3), st.dictionaries(text, text, max_size=2))


# ---------------------------------------------------------------- running plano on a copy


class Outcomes:
    """How the inputs of one test ended, printed at its end (the closing note's figures)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.counts: collections.Counter = collections.Counter()

    def add(self, code: int) -> None:
        self.counts[code] += 1

    def report(self) -> str:
        total = sum(self.counts.values())
        ends = ", ".join(f"exit {code}: {count}" for code, count in sorted(self.counts.items()))
        return f"{self.name}: {total} inputs ({ends})"


def run(root: Path, args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    old = Path.cwd()
    os.chdir(root)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(args)
    finally:
        os.chdir(old)
    return code, out.getvalue(), err.getvalue()


def secret_values(infra: Path) -> set[str]:
    values = set()
    for name in (n.ENV_DEV, n.ENV_PROD):
        values |= {value for key, value in read_env(infra / name).items() if "PASSWORD" in key and len(value) >= 16}
    return values


def committed_text(infra: Path) -> dict[str, str]:
    """Every file that is not git-ignored (data/ and the env files with secrets are)."""
    return {rel: (infra / rel).read_text(errors="replace") for rel in tree_digest(infra)
            if rel not in IGNORED and not rel.startswith("data/")}


# ---------------------------------------------------------------- structure


def compose_keys(data, path: str, app: str, keys: set[str]) -> None:
    if isinstance(data, dict):
        for key, value in data.items():
            here = f"{path}/{abstract(str(key), app)}"
            keys.add(here)
            compose_keys(value, here, app, keys)
    elif isinstance(data, list):
        for value in data:
            compose_keys(value, f"{path}[]", app, keys)


def abstract(key: str, app: str) -> str:
    """A key with the app's own name taken out: app1-backend -> <app>-backend."""
    prefix = n.variable_prefix(app)
    if key == app or key.startswith(f"{app}-") or key.startswith(f"{app}_"):
        return "<app>" + key[len(app):]
    if key.startswith(f"{prefix}_"):
        return "<APP>" + key[len(prefix):]
    return key


def structure(infra: Path, app: str) -> dict[str, object]:
    """Compose keys, env keys and nginx directives of the rendered tree, names abstracted."""
    shape: dict[str, object] = {}
    for name in (n.BASE_COMPOSE, n.DEV_COMPOSE, n.PROD_COMPOSE):
        keys: set[str] = set()
        compose_keys(yaml.safe_load((infra / name).read_text()), "", app, keys)
        shape[name] = keys
    for name in (n.ENV_BASE, n.ENV_DEV, n.ENV_PROD, n.ENV_PROD_EXAMPLE):
        shape[name] = sorted(abstract(key, app) for key in read_env(infra / name))
        lines = [line for line in (infra / name).read_text().splitlines() if line and not line.startswith("#")]
        assert all(re.fullmatch(r"[A-Z_][A-Z0-9_]*=[^\n]*", line) for line in lines), lines
    for path in sorted((infra / "docker/nginx").rglob("*.conf")):
        # The directive names, in order (comments and values left out).
        statements = re.sub(r"#[^\n]*", "", path.read_text())
        statements = re.sub(r"\b(map\s[^{]*)\{[^}]*\}", r"\1{}", statements)  # a map's entries are values, not directives
        directives = re.findall(r"(?:^|[;{}])\s*([a-z_0-9]+)", statements)
        shape[f"nginx:{abstract(path.stem, app)}"] = directives
    return shape


def validate(infra: Path, nginx_changed: bool) -> None:
    runner = SubprocessRunner()
    from plano.core.manifest import load_infra

    manifest = load_infra(infra).manifest
    for outcome in check.check_compose(infra, manifest, runner):
        assert outcome.status == check.PASSED, outcome
    if nginx_changed:
        gixy = check.check_tool("gixy", "gixy", ["docker/nginx/nginx.conf"], infra, runner)
        assert gixy.status == check.PASSED, gixy
    for script in check.scripts(infra):
        got = subprocess.run(["sh", "-n", script], cwd=infra, capture_output=True, text=True)
        assert got.returncode == 0, (script, got.stderr)


def nginx_digest(infra: Path) -> dict[str, str]:
    return {rel: digest for rel, digest in tree_digest(infra / "docker/nginx").items()}


class Checker:
    """One command family on copies of one prepared infra, and the harmless baseline."""

    def __init__(self, template: Path, scratch: Path, name: str) -> None:
        self.template, self.scratch = template, scratch
        self.outcomes = Outcomes(name)
        self.count = 0
        self.baselines: dict[str, tuple[dict, dict]] = {}

    def copy(self) -> Path:
        self.count += 1
        target = self.scratch / f"run{self.count}"
        shutil.copytree(self.template, target, symlinks=True)
        return target

    def baseline(self, key: str, args: list[str], app: str, infra_rel: str = "infra") -> tuple[dict, dict]:
        if key not in self.baselines:
            root = self.copy()
            code, out, err = run(root, args)
            assert code == 0, (args, err)
            infra = root / infra_rel
            self.baselines[key] = (structure(infra, app), nginx_digest(infra))
            shutil.rmtree(root)
        return self.baselines[key]

    def check(self, args: list[str], app: str, baseline: tuple[dict, dict] | None, infra_rel: str = "infra") -> int:
        root = self.copy()
        infra = root / infra_rel
        before = tree_digest(root)
        try:
            code, out, err = run(root, args)
            self.outcomes.add(code)
            assert code in EXIT_CODES, (args, code, err)
            assert "Traceback" not in err and "Traceback" not in out, err
            if code != 0:
                assert err.startswith("error: ") and err.count("\n") == 1, (args, err)
                assert tree_digest(root) == before, f"{args}: a failing command changed files"
                return code
            secrets = secret_values(infra)
            for rel, content in committed_text(infra).items():
                leaked = [value for value in secrets if value in content]
                assert not leaked, f"{args}: a secret in {rel}"
            assert not any(value in out + err for value in secrets), args
            if baseline is not None:
                shape, nginx = baseline
                assert structure(infra, app) == shape, args
                validate(infra, nginx_digest(infra) != nginx)
            else:
                validate(infra, True)
            return code
        finally:
            shutil.rmtree(root, ignore_errors=True)


# ---------------------------------------------------------------- flags

INIT = ["init", "infra", "--registry", "registry.example.com/acme", "--email", "ops@example.com"]
ADD_FLAGS = {
    "--domain": "web.example.com", "--backend-port": "3001", "--frontend-port": "3002", "--api-path": "/v1",
    "--backend-health": "/v1/health", "--frontend-health": "/health", "--backend-source": "../x/backend",
    "--frontend-source": "../x/frontend", "--backend-image": "registry.example.com/acme/x-api",
    "--frontend-image": "registry.example.com/acme/x-web", "--repo": "git@github.com:acme/x.git",
}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """An infra with app1 (a release command, restic offsite), and an empty folder for init."""
    base = tmp_path_factory.mktemp("prop")
    empty = base / "empty"
    empty.mkdir()
    with_infra = base / "with-infra"
    with_infra.mkdir()
    assert run(with_infra, INIT)[0] == 0
    infra = with_infra / "infra"
    assert run(infra, ["app", "add", "app1", "--domain", "app1.example.com"])[0] == 0
    text = (infra / "plano.yml").read_text()
    text = text.replace("    domains:", "    backend: {release: [npx, prisma, migrate, deploy]}\n    domains:", 1)
    text = text.replace("  keep_monthly: 6\n", "  keep_monthly: 6\n  restic: {repository: 's3:s3.example.com/acme', password_file: restic-password}\n")
    (infra / "plano.yml").write_text(text)
    (infra / "restic-password").write_text("not-a-real-password\n")
    assert run(infra, ["render"])[0] == 0
    return base, empty, with_infra


@pytest.fixture
def checker(prepared, tmp_path_factory, request):
    made = {}

    def make(template: Path, name: str) -> Checker:
        made[name] = Checker(template, tmp_path_factory.mktemp("runs"), name)
        return made[name]

    yield make
    for item in made.values():
        print(f"\n{item.outcomes.report()}")


def test_every_app_add_flag(prepared, checker):
    _, _, with_infra = prepared
    add = checker(with_infra, "app add flags")

    @SETTINGS
    @given(flag=st.sampled_from([*ADD_FLAGS, "NAME"]), data=st.data())
    def prop(flag, data):
        value = data.draw(st.one_of(text, near(ADD_FLAGS.get(flag, "web"))))
        flags = {"--domain": "web.example.com"}
        name = "web"
        if flag == "NAME":
            name = value
        else:
            flags[flag] = value
        option_words = [word for key, val in flags.items() for word in (key, val)]
        argv = ["-C", "infra", "app", "add", *option_words, "--", name]
        baseline = None
        if flag != "NAME":
            harmless = dict(flags, **{flag: ADD_FLAGS[flag]})
            baseline = add.baseline(flag, ["-C", "infra", "app", "add", "web", *[w for k, v in harmless.items() for w in (k, v)]], "web")
        add.check(argv, name, baseline, "infra")

    prop()


INIT_FLAGS = {"--registry": "registry.example.com/acme", "--email": "ops@example.com", "--name": "acme", "DIRECTORY": "infra"}


def test_every_init_flag(prepared, checker):
    _, empty, _ = prepared
    init = checker(empty, "init flags")

    @SETTINGS
    @given(flag=st.sampled_from(list(INIT_FLAGS)), data=st.data())
    def prop(flag, data):
        value = data.draw(st.one_of(text, near(INIT_FLAGS[flag])))
        # Only folders inside the scratch copy: an absolute or ../ DIRECTORY would write
        # elsewhere on this machine (their grammar is tested in tests/unit/test_fields.py).
        assume(flag != "DIRECTORY" or not (value.startswith(("/", "~")) or ".." in value))
        values = dict(INIT_FLAGS, **{flag: value})
        argv = ["init", "--registry", values["--registry"], "--email", values["--email"], "--name", values["--name"], "--",
                values["DIRECTORY"]]
        infra_rel = values["DIRECTORY"] if flag == "DIRECTORY" else "infra"
        harmless = ["init", "--registry", INIT_FLAGS["--registry"], "--email", INIT_FLAGS["--email"], "--name", "acme", "--", "infra"]
        # A folder named otherwise renders the same tree; the check runs where it was made.
        init.check(argv, "x", init.baseline("init", harmless, "x") if flag != "DIRECTORY" else None,
                   infra_rel if flag == "DIRECTORY" and fields_ok(value) else "infra")

    prop()


def fields_ok(value: str) -> bool:
    try:
        fields.local_path(value)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------- plano.yml fields

# (path into plano.yml, a harmless value of the same shape)
MANIFEST_FIELDS = [
    (("name",), "acme"), (("registry",), "registry.example.com/other"), (("email",), "admin@example.org"),
    (("images", "nginx"), "nginx:1.28.1"), (("images", "node"), "node:22.20.0-bookworm-slim"), (("acme", "server"), "https://acme.example.com/dir"),
    (("backup", "time"), "04:00"), (("backup", "keep_daily"), 3), (("backup", "restic", "repository"), "s3:s3.example.com/other"),
    (("backup", "restic", "password_file"), "restic-password"),
    (("prod", "bind"), "127.0.0.1"), (("prod", "http_port"), 8080), (("dev", "domain_suffix"), "test"), (("dev", "database_port"), 5433),
    (("apps", "app1", "domains", 0), "app1.example.org"), (("apps", "app1", "repo"), "git@github.com:acme/app1.git"),
    (("apps", "app1", "backend", "port"), 3005), (("apps", "app1", "backend", "path"), "/v2"), (("apps", "app1", "backend", "health"), "/v2/up"),
    (("apps", "app1", "backend", "source"), "../elsewhere/api"), (("apps", "app1", "backend", "image"), "registry.example.com/acme/api"),
    (("apps", "app1", "backend", "dev_target"), "development"), (("apps", "app1", "backend", "dev_command", 1), "watch"),
    (("apps", "app1", "backend", "release", 0), "node"), (("apps", "app1", "backend", "test", 0), "pnpm"),
    (("apps", "app1", "frontend", "health"), "/up"), (("apps", "app1", "frontend", "port"), 3100),
    (("apps", "app1", "frontend", "dev_command"), ["npm", "run", "dev"]),
]


def set_field(data: dict, path: tuple, value) -> None:
    node = data
    for part in path[:-1]:
        if isinstance(part, int):
            node = node[part]
        else:
            node = node.setdefault(part, {} if not isinstance(path[path.index(part) + 1], int) else [])
    last = path[-1]
    if isinstance(last, int) and isinstance(node, list):
        while len(node) <= last:
            node.append("x")
    node[last] = value


DEFAULT_COMMANDS = {"dev_command": ["npm", "run", "start:dev"], "test": ["npm", "test"]}


def with_value(text: str, path: tuple, value) -> str:
    data = yaml.safe_load(text)
    for role in ("backend", "frontend"):
        svc = data["apps"]["app1"].setdefault(role, {})
        for key, default in DEFAULT_COMMANDS.items():
            svc.setdefault(key, list(default))
    set_field(data, path, value)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def test_every_plano_yml_field(prepared, checker):
    _, _, with_infra = prepared
    fields_checker = checker(with_infra, "plano.yml fields")
    good = (with_infra / "infra/plano.yml").read_text()

    @SETTINGS
    @given(field=st.sampled_from(MANIFEST_FIELDS), data=st.data())
    def prop(field, data):
        path, harmless = field
        value = data.draw(st.one_of(anything, near(harmless) if isinstance(harmless, str) else st.integers(-1, 70_000)))
        key = "/".join(map(str, path))
        if key not in fields_checker.baselines:
            root = fields_checker.copy()
            (root / "infra/plano.yml").write_text(with_value(good, path, harmless))
            code, _, err = run(root / "infra", ["render", "--force"])
            assert code == 0, (key, err)
            fields_checker.baselines[key] = (structure(root / "infra", "app1"), nginx_digest(root / "infra"))
            shutil.rmtree(root)
        baseline = fields_checker.baselines[key]
        # The template gets the new plano.yml; render is the command under test.
        template = fields_checker.template
        original = (template / "infra/plano.yml").read_text()
        try:
            (template / "infra/plano.yml").write_text(with_value(good, path, value))
        except yaml.YAMLError:  # a value PyYAML cannot write (a lone surrogate): nothing to test
            return
        try:
            fields_checker.check(["-C", "infra", "render", "--force"], "app1", baseline, "infra")
        finally:
            (template / "infra/plano.yml").write_text(original)

    prop()


# ---------------------------------------------------------------- the operations' flags and arguments

V = object()  # where the drawn value goes
OPERATIONS = {
    "deploy --tag": (["deploy", "app1", "--tag", V], "2.0.0"),
    "deploy APP": (["deploy", V, "--tag", "2.0.0"], "app1"),
    "deploy --timeout": (["deploy", "app1", "--tag", "2.0.0", "--timeout", V], "60"),
    "rollback APP": (["rollback", V], "app1"),
    "releases APP": (["releases", V], "app1"),
    "maintenance APP": (["maintenance", "on", V], "app1"),
    "backup verify BACKUP_ID": (["backup", "verify", V], "20261201T033000Z"),
    "backup restore BACKUP_ID": (["backup", "restore", V, "--yes"], "20261201T033000Z"),
    "backup restore --to-scratch": (["backup", "restore", "20261201T033000Z", "app1", "--to-scratch", V, "--yes"], "app1_copy"),
    "db create APP": (["db", "create", V], "app1"),
    "db drop APP": (["db", "drop", V, "--yes"], "app1"),
    "prod logs --tail": (["prod", "logs", "--tail", V], "100"),
    "prod logs SERVICE": (["prod", "logs", V], "nginx"),
    "prod exec SERVICE": (["prod", "exec", V, "--", "ls"], "app1-backend"),
    "prod restart SERVICE": (["prod", "restart", V], "nginx"),
    "certs issue --server": (["certs", "issue", "app1", "--server", V, "--dry-run"], "https://acme.example.com/directory"),
    "certs issue APP": (["certs", "issue", V, "--dry-run"], "app1"),
    "secrets rotate APP": (["secrets", "rotate", V, "--dry-run"], "app1"),
}


def test_every_operation_flag(prepared, checker, monkeypatch):
    """The commands that drive the engine, against a scripted one (tests/cli/test_dry_runs):
    a refused value runs nothing; nothing puts a secret on a command line."""
    from tests.cli.test_dry_runs import engine_script

    _, _, with_infra = prepared
    ops = checker(with_infra, "operation flags")
    monkeypatch.setenv("PLANO_DEV_CA_DIR", str(with_infra / "dev-ca"))

    @SETTINGS
    @given(name=st.sampled_from(list(OPERATIONS)), data=st.data())
    def prop(name, data):
        words, valid = OPERATIONS[name]
        value = data.draw(st.one_of(text, near(valid), st.just(valid)))
        argv = ["-C", "infra", *[value if word is V else word for word in words]]
        root = ops.copy()
        infra = root / "infra"
        before = tree_digest(root)
        runner = engine_script()
        out, err = io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                old = Path.cwd()
                os.chdir(root)
                try:
                    code = main(argv, runner=runner, sleep=lambda _: None)
                finally:
                    os.chdir(old)
            ops.outcomes.add(code)
            assert code in EXIT_CODES, (argv, code, err.getvalue())
            assert "Traceback" not in err.getvalue(), err.getvalue()
            if code == 2:  # bad input: refused before anything ran or changed
                assert runner.actions == [] and tree_digest(root) == before, argv
                assert err.getvalue().startswith("error: ") and err.getvalue().count("\n") == 1, err.getvalue()
            secrets = secret_values(infra)
            assert not [call.argv for call in runner.calls if any(v in word for v in secrets for word in call.argv)], argv
            assert not any(v in out.getvalue() + err.getvalue() for v in secrets), argv
        finally:
            shutil.rmtree(root, ignore_errors=True)

    prop()
