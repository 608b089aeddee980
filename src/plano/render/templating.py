"""Jinja2 environment over templates/ (StrictUndefined: a missing value is a bug)."""

from __future__ import annotations

from functools import cache
from importlib import resources

import jinja2

from plano.core.files import File, Tree, with_header


@cache
def environment() -> jinja2.Environment:
    root = resources.files("plano") / "templates"
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(root)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


@cache
def app_environment() -> jinja2.Environment:
    """For app-repo files (CI workflows) full of `${{ }}` and `{{ }}` of their own:
    plano's values are written [[ like_this ]]."""
    env = environment().overlay(
        variable_start_string="[[", variable_end_string="]]",
        block_start_string="[%", block_end_string="%]",
        comment_start_string="[#", comment_end_string="#]",
    )
    return env


def render_app_template(template: str, **values: object) -> str:
    return app_environment().get_template(template).render(**values)


def render_template(template: str, **values: object) -> str:
    if not template.endswith(".j2"):
        return static(template)
    return environment().get_template(template).render(**values)


def static(name: str) -> str:
    return (resources.files("plano") / "templates" / name).read_text()


def generated(path: str, template: str, mode: int = 0o644, **values: object) -> Tree:
    """One generated file at `path` from `template`, with plano's header."""
    return {path: File(with_header(path, render_template(template, **values)), mode=mode)}
