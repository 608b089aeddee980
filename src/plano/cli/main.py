"""The root command, the infra's own commands (init, app, render, check, demo) and
the error boundary. Heavy imports stay lazy so `plano --help` starts fast."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import click

from plano import __version__
from plano.cli import params as P
from plano.cli.context import session
from plano.cli.output import ConsoleOutput, console, echo_json, summarize
from plano.core.errors import BUG, PlanoError
from plano.core.runner import Runner, SubprocessRunner
from plano.core.session import Output, Session

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class Root(click.Group):
    """The root group: it keeps the command line as typed (what -e sends to the server,
    what the deploy lock names) and writes the audit log's line of a command that
    changes something, when it runs here (with -e, the server's plano writes it, but for
    the commands that run here: k8s)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        from plano.cli.server import forwarded

        ctx.meta["plano.argv"] = list(args)
        if isinstance(ctx.obj, Session):
            ctx.obj.command = tuple(forwarded(args))
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> object:
        from plano.core import commands

        made, environment = ctx.obj, ctx.params.get("environment")
        if not isinstance(made, Session) or not commands.changes(list(made.command)):
            return super().invoke(ctx)
        if environment and not commands.runs_here(list(made.command)):
            return super().invoke(ctx)  # the server's plano writes the line
        from plano.cli.audit import audited

        return audited(made, lambda: super(Root, self).invoke(ctx), environment)


@click.group(cls=Root, context_settings=CONTEXT)
@click.version_option(__version__, prog_name="plano")
@click.option("-C", "--dir", "directory", type=P.LOCAL_PATH, help="The infra folder (default: the nearest folder upwards holding plano.yml).")
@click.option("-e", "--environment", metavar="NAME", type=P.ENVIRONMENT,
              help="Run the command on this environment's server over SSH (environments: in plano.yml); default: here. "
              "With k8s: its Kubernetes namespace and context, with kubectl from here.")
@click.option("--accept-host-key", is_flag=True, help="With -e: trust the server's SSH host key if none is recorded yet.")
@click.option("--discard-server-edits", is_flag=True, help="With -e: overwrite files changed by hand in the server's infra.")
@click.pass_context
def cli(ctx: click.Context, directory: str | None, environment: str | None, accept_host_key: bool,
        discard_server_edits: bool) -> None:
    """plano: many NestJS + Next.js apps on one server, behind nginx with HTTPS,
    with a shared Postgres and Redis, as plain compose files you own.

    \b
    Exit codes: 0 ok; 1 a check failed, a service does not run (status, doctor) or
    files are out of date; 2 bad input; 3 refused (hand-edited files, existing infra);
    4 a tool, an engine or a file is not usable; 70 a bug in plano. Commands that run
    a tool (compose, psql, tests) exit with its code.
    """
    if directory:
        ctx.obj.directory = Path(directory)
    if environment:
        from plano.cli.server import dispatch

        ctx.meta.update({"plano.environment": environment, "plano.accept_host_key": accept_host_key})
        dispatch(ctx, environment, ctx.meta["plano.argv"], accept_host_key, discard_server_edits)


@cli.command()
@click.argument("directory", type=P.LOCAL_PATH, default="infra")
@click.option("--registry", required=True, type=P.REGISTRY, help="Where CI pushes app images, e.g. registry.example.com/acme.")
@click.option("--email", required=True, type=P.EMAIL, help="Let's Encrypt account email (expiry notices).")
@click.option("--name", type=P.PROJECT, help="Project name for compose (default: from the folder name).")
@click.option("--force", is_flag=True, help="Re-initialise an existing infra (secrets are kept).")
@click.pass_context
def init(ctx: click.Context, directory: str, registry: str, email: str, name: str | None, force: bool) -> None:
    """Create the infra repo in DIRECTORY (default: infra)."""
    from plano.ops import infra

    root = Path(directory)
    summarize(infra.init(session(ctx), root, registry, email, name, force))
    console().print(f"infra ready in {root}/. Next: cd {root} && plano app add app1 --domain app1.example.com")


@cli.group()
def app() -> None:
    """Register, remove and list apps."""


@app.command("add")
@click.argument("name", type=P.APP)
@click.option("--domain", "domains", multiple=True, required=True, type=P.DOMAIN, help="A domain of the app; repeat for more (e.g. the www name).")
@click.option("--backend-port", type=P.PORT, help="Port the NestJS backend listens on [3000].")
@click.option("--frontend-port", type=P.PORT, help="Port the Next.js frontend listens on [3000].")
@click.option("--api-path", type=P.URL_PATH, help="URL path served by the backend [/api].")
@click.option("--backend-health", type=P.URL_PATH, help="Backend healthcheck path [/api/health].")
@click.option("--frontend-health", type=P.URL_PATH, help="Frontend healthcheck path [/].")
@click.option("--backend-source", type=P.LOCAL_PATH, help="Backend source, relative to the infra [../NAME/backend].")
@click.option("--frontend-source", type=P.LOCAL_PATH, help="Frontend source, relative to the infra [../NAME/frontend].")
@click.option("--backend-image", type=P.IMAGE_NAME, help="Backend image without tag [REGISTRY/NAME-backend].")
@click.option("--frontend-image", type=P.IMAGE_NAME, help="Frontend image without tag [REGISTRY/NAME-frontend].")
@click.option("--no-backend", is_flag=True, help="The app has no backend.")
@click.option("--no-frontend", is_flag=True, help="The app has no frontend.")
@click.option("--no-database", is_flag=True, help="No Postgres database for this app.")
@click.option("--no-redis", is_flag=True, help="No Redis user for this app.")
@click.option("--repo", type=P.REPO_URL, help="The app's git repository URL (for 'plano clone').")
@click.option("--force", is_flag=True, help="Overwrite hand edits of generated files.")
@click.pass_context
def app_add(ctx: click.Context, name: str, domains: tuple[str, ...], **opts) -> None:
    """Register app NAME and re-render."""
    from plano.ops import infra

    backend = {
        "enabled": False if opts["no_backend"] else None,
        "port": opts["backend_port"], "path": opts["api_path"], "health": opts["backend_health"],
        "source": opts["backend_source"], "image": opts["backend_image"],
    }
    frontend = {
        "enabled": False if opts["no_frontend"] else None,
        "port": opts["frontend_port"], "health": opts["frontend_health"],
        "source": opts["frontend_source"], "image": opts["frontend_image"],
    }
    entry = infra.app_entry(list(domains), backend, frontend, not opts["no_database"], not opts["no_redis"], opts["repo"])
    summarize(infra.add_app(session(ctx), name, entry, opts["force"]))
    console().print(f"app {name} added. Its data lives in data/uploads/{name}/ and the {name} database.")


@app.command("new")
@click.argument("name", type=P.APP)
@click.option("--domain", "domains", multiple=True, required=True, type=P.DOMAIN, help="A domain of the app; repeat for more.")
@click.option("--path", type=P.LOCAL_PATH, help="Where to create the app repo [../NAME, next to the infra].")
@click.option("--ci-deploy", metavar="ENV", type=P.ENVIRONMENT,
              help="Its CI deploys each build of the default branch to this environment (plano -e ENV deploy, over SSH).")
@click.pass_context
def app_new(ctx: click.Context, name: str, domains: tuple[str, ...], path: str | None, ci_deploy: str | None) -> None:
    """Create app repo NAME (NestJS backend + Next.js frontend, Dockerfiles, CI) and register it."""
    from plano.ops import infra

    repo, result = infra.new_app(session(ctx), name, list(domains), Path(path) if path else None, ci_deploy)
    summarize(result)
    console().print(f"app repo created in {repo} (git init done). Next: cd {repo}/backend && npm ci && npm test; then plano dev up")


@app.command("adopt")
@click.argument("path", type=P.LOCAL_PATH)
@click.option("--domain", "domains", multiple=True, required=True, type=P.DOMAIN, help="A domain of the app; repeat for more.")
@click.option("--name", type=P.APP, help="The app's name [the repo folder's name].")
@click.option("--backend", "backend_dir", metavar="DIR", type=P.LOCAL_PATH, help="The NestJS backend's folder in the repo [found by its package.json].")
@click.option("--frontend", "frontend_dir", metavar="DIR", type=P.LOCAL_PATH, help="The Next.js frontend's folder in the repo [found by its package.json].")
@click.option("--no-database", is_flag=True, help="No Postgres database, even if the backend depends on a Postgres client.")
@click.option("--no-redis", is_flag=True, help="No Redis user, even if the backend depends on a Redis client.")
@click.option("--ci", type=click.Choice(["auto", "github", "gitlab", "none"]), default="auto", show_default=True,
              help="Which pipeline to add: auto is none beside an existing one, else GitLab's for a GitLab remote, else GitHub's.")
@click.option("--ci-deploy", metavar="ENV", type=P.ENVIRONMENT,
              help="The pipeline added deploys each build of the default branch to this environment (plano -e ENV deploy).")
@click.pass_context
def app_adopt(ctx: click.Context, path: str, domains: tuple[str, ...], name: str | None, backend_dir: str | None, frontend_dir: str | None,
              no_database: bool, no_redis: bool, ci: str, ci_deploy: str | None) -> None:
    """Register the existing app repo at PATH: add its missing Dockerfiles, .dockerignore and CI (never overwriting a file)."""
    from plano.ops import infra

    name, adoption, repo_plan, result = infra.adopt_app(session(ctx), Path(path), name, list(domains), backend_dir, frontend_dir,
                                                        not no_database, not no_redis, ci, ci_deploy)
    out = console()
    for part in adoption.parts:
        out.print(f"found the {part.role} in {part.dir}/")
    for fact in adoption.facts:
        out.print(fact, highlight=False)
    summarize(repo_plan, "added")
    summarize(result)
    for tip in adoption.advice:
        out.print(f"[yellow]to do:[/] {tip}", highlight=False)
    running = f"; on a prod stack already running: plano db create {name} --prod" if adoption.database and not no_database else ""
    out.print(f"app {name} adopted. Next: plano dev up{running}")


@app.command("remove")
@click.argument("name", type=P.APP)
@click.option("--force", is_flag=True, help="Overwrite hand edits of generated files.")
@click.pass_context
def app_remove(ctx: click.Context, name: str, force: bool) -> None:
    """Unregister app NAME and re-render. Its data is kept."""
    from plano.ops import infra

    summarize(infra.remove_app(session(ctx), name, force))
    console().print(
        f"app {name} removed. Kept: data/uploads/{name}/, its database and its secrets in .env.dev/.env.prod "
        "(delete them yourself when you are sure)."
    )


@app.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def app_list(ctx: click.Context, as_json: bool) -> None:
    """List the registered apps."""
    from plano.cli.output import table
    from plano.ops.apps import app_rows

    rows = app_rows(session(ctx).manifest)
    if as_json:
        echo_json(rows)
        return
    table(("app", "domains", "backend", "frontend", "database", "redis"),
          [(row["name"], " ".join(row["domains"]), service_cell(row["backend"]), service_cell(row["frontend"]),
            "yes" if row["database"] else "no", "yes" if row["redis"] else "no") for row in rows],
          "no apps yet: plano app add app1 --domain app1.example.com")


def service_cell(svc: dict | None) -> str:
    return f"{svc['path']} -> {svc['service']}:{svc['port']}" if svc else "-"


@cli.command()
@click.option("--check", is_flag=True, help="Write nothing; exit 1 when any file is out of date (for CI).")
@click.option("--diff", is_flag=True, help="Show the diff of each change.")
@click.option("--force", is_flag=True, help="Overwrite generated files that were edited by hand.")
@click.pass_context
def render(ctx: click.Context, check: bool, diff: bool, force: bool) -> None:
    """Render every file from plano.yml."""
    from plano.core.errors import CheckFailed
    from plano.ops import infra

    result = infra.check_render(session(ctx)) if check else infra.render(session(ctx), force)
    if diff:
        click.echo("".join(result.diffs.values()), nl=False)
    if not check:
        summarize(result)
        return
    for rel in result.changed:
        console().print(f"  out of date: {rel}" + (" (edited by hand)" if rel in result.edited else ""))
    if result.changed:
        raise CheckFailed(f"{len(result.changed)} file(s) out of date; run 'plano render'")
    console().print("  everything up to date")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def check(ctx: click.Context, as_json: bool) -> None:
    """Run the real validators (compose, nginx -t, gixy, shellcheck, hadolint)."""
    from plano.core.errors import CheckFailed
    from plano.ops import check as checks

    outcomes = checks.run_all(session(ctx))
    if as_json:
        echo_json(outcomes)
    else:
        out = console()
        styles = {checks.PASSED: "green", checks.FAILED: "red", checks.SKIPPED: "yellow"}
        for o in outcomes:
            out.print(f"[{styles[o.status]}]{o.status:8}[/] {o.name}" + (f"  ({o.detail})" if o.detail and o.status != checks.FAILED else ""))
            if o.status == checks.FAILED:
                out.print("    " + o.detail.replace("\n", "\n    "), markup=False)
    failed = [o.name for o in outcomes if o.status == checks.FAILED]
    if failed:
        raise CheckFailed(f"failed: {', '.join(failed)}")


@cli.command()
@click.argument("directory", type=P.LOCAL_PATH, default="plano-demo")
@click.option("--image", "images", multiple=True, metavar="NAME=REF", help="Use another image, e.g. nginx=mirror.example.com/nginx:1.28.0 (names: nginx, postgres, redis, certbot, node).")
@click.pass_context
def demo(ctx: click.Context, directory: str, images: tuple[str, ...]) -> None:
    """Create a demo workspace (infra + app1), validate it, and start it where a
    Docker engine answers (dev stack, https://app1.localhost)."""
    from plano.cli.stack import print_started
    from plano.ops import check as checks
    from plano.ops import demo as demos

    made = demos.create(session(ctx), Path(directory), demos.parse_images(images))
    out = console()
    out.print(f"created {directory}/infra and {directory}/app1 (backend + frontend)")
    for o in made.checks:
        out.print(f"  {o.status:8} {o.name}" + (f"  ({o.detail.splitlines()[0]})" if o.detail and o.status != checks.PASSED else ""))
    if made.not_started:
        out.print(f"not started: {made.not_started}")
        out.print(f"once an engine answers: cd {made.root} && plano dev up")
        return
    print_started(made.started)


def command_line() -> click.Group:
    """The whole command tree: the root's own commands and each family's group."""
    from plano.cli import (
        audit,
        backup,
        certs,
        dashboard,
        deploy,
        export,
        k8s,
        ops,
        secrets,
        server,
        stack,
        swarm,
        traffic,
    )

    for command in (*audit.commands(), *stack.commands(), *certs.commands(), *backup.commands(), *deploy.commands(), *ops.commands(),
                    *secrets.commands(), *swarm.commands(), *export.commands(), *k8s.commands(), *server.commands(),
                    *dashboard.commands(), *traffic.commands()):
        cli.add_command(command)
    return cli


def main(argv: list[str] | None = None, runner: Runner | None = None, output: Output | None = None,
         sleep: Callable[[float], None] = time.sleep) -> int:
    """Run one command. `runner` and `output` replace the subprocess runner and the
    terminal (tests, remote operation, the dashboard); `sleep` the waits of deploys."""
    made = Session(runner or SubprocessRunner(), output or ConsoleOutput(), sleep=sleep)
    try:
        # Without standalone mode, click returns the code of a click.exceptions.Exit.
        code = command_line().main(args=argv, prog_name="plano", standalone_mode=False, obj=made)
    except PlanoError as exc:
        return report(exc, made.secret_values())
    except OSError as exc:  # a file plano must read or write: one line naming it
        from plano.core.errors import FileProblem

        return report(FileProblem.of(exc))
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 1
    except click.ClickException as exc:  # a flag or an argument: one line naming it
        plain = isinstance(exc, click.UsageError) and not isinstance(exc, click.BadParameter) or isinstance(exc, click.MissingParameter)
        see = f" (see {exc.ctx.command_path} --help)" if plain and exc.ctx else ""
        click.echo(f"error: {one_line(P.flag_error(exc))}{see}", err=True)
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except Exception:  # a traceback here is a bug in plano
        import traceback

        traceback.print_exc()
        click.echo("error: this is a bug in plano; please report it with the traceback above", err=True)
        return BUG
    return code if isinstance(code, int) else 0


def report(exc: PlanoError, secrets: set[str] = frozenset()) -> int:
    """The error's one line; a secret a tool's output carried into it is masked."""
    from plano.core.errors import DriftError
    from plano.core.secrets import mask

    if isinstance(exc, DriftError):
        click.echo(mask(exc.diff, secrets), err=True, nl=False)
    # One line; an error that carries a tool's details (a failed deploy's health log) adds
    # them on the lines after it. Values users typed reach it quoted (fields.shown).
    click.echo(f"error: {mask(str(exc), secrets)}", err=True)
    return exc.exit_code


def one_line(message: str) -> str:
    """click's messages hold what users typed unquoted: a newline in it is shown, not printed."""
    return message.replace("\r", "\\r").replace("\n", "\\n")


if __name__ == "__main__":
    sys.exit(main())
