"""Click types for the values users type, each checked by its grammar in core/fields.py
(the same checker plano.yml's field goes through), so a bad flag is refused before any
operation starts, in one line naming the flag."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import click

from plano.core import fields


class BadValue(click.BadParameter):
    """A value its field's grammar refused; `flag_error` words it like `fields.given`."""

    def __init__(self, value: Any, cause: ValueError, ctx: click.Context | None, param: click.Parameter | None) -> None:
        super().__init__(str(cause), ctx, param)
        self.value = value
        self.cause = cause


class Checked(click.ParamType):
    def __init__(self, name: str, check: Callable[[Any], Any]) -> None:
        self.name = name
        self.check = check

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return self.check(value)
        except ValueError as exc:
            raise BadValue(value, exc, ctx, param) from None


def number(check: Callable[[int], int], value: Any) -> int:
    if isinstance(value, int):
        return check(value)
    text = str(value).strip()
    if not (text.isascii() and text.lstrip("-").isdigit() and len(text) < 12):
        raise ValueError("not a whole number")
    return check(int(text))


APP = Checked("app", fields.app_name)
PROJECT = Checked("name", fields.project_name)
DOMAIN = Checked("domain", fields.domain)
EMAIL = Checked("email", fields.email)
REGISTRY = Checked("registry", fields.registry)
IMAGE_NAME = Checked("image", fields.image_name)
IMAGE_TAG = Checked("tag", fields.image_tag)
PORT = Checked("port", partial(number, fields.port))
URL_PATH = Checked("path", fields.url_path)
LOCAL_PATH = Checked("path", fields.local_path)
REPO_URL = Checked("url", fields.repo_url)
ACME_URL = Checked("url", fields.acme_url)
BACKUP_ID = Checked("id", fields.backup_id)
DATABASE = Checked("database", fields.database_name)
IP_ADDRESS = Checked("address", fields.ip_address)
SERVICE_NAME = Checked("service", fields.service_name)
NODE = Checked("node", fields.node_name)
LINES = Checked("lines", fields.line_count)
ENVIRONMENT = Checked("environment", fields.environment_name)
SECONDS = click.FloatRange(1, 86400)


def flag_error(exc: click.ClickException) -> str:
    """A click error on one line, naming the flag or argument (`--tag 'a b': ...`)."""
    message = exc.format_message().replace("\n", " ")
    if isinstance(exc, click.BadParameter) and not isinstance(exc, click.MissingParameter) and exc.param is not None:
        param = exc.param
        hint = " / ".join(param.opts) if isinstance(param, click.Option) else param.human_readable_name
        if isinstance(exc, BadValue):
            return fields.about(hint, exc.value, exc.cause)
        return f"{hint}: {exc.message}"
    return message
