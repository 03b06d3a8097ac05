"""Templates live in ``templates/<channel>/<name>.j2`` and render in a Jinja2 sandbox.

An email template defines ``{% block subject %}``, ``{% block html %}`` and may define
``{% block text %}``; an SMS or push template is the message text itself. Undefined
variables raise (``StrictUndefined``): a message is never sent with blanks.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, TemplateError, TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment

CHANNELS = ("email", "sms", "push")
EMAIL_BLOCKS = ("subject", "html")


class RenderError(Exception):
    """The template could not be rendered; ``str(err)`` says which and why."""


@dataclass(frozen=True)
class Rendered:
    body: str
    subject: str | None = None
    text: str | None = None


def _header_text(rendered: str) -> str:
    """A subject is a plain-text header: undo the HTML escaping of the email template and
    fold line breaks, so no value can add a header of its own."""
    return " ".join(html.unescape(rendered).split())


class Templates:
    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.env = SandboxedEnvironment(
            loader=FileSystemLoader(str(self.directory)),
            undefined=StrictUndefined,
            # HTML email escapes what it interpolates; SMS and push text do not.
            autoescape=lambda name: bool(name and name.startswith("email/")),
            keep_trailing_newline=False,
        )

    def path(self, channel: str, name: str) -> Path:
        return self.directory / channel / f"{name}.j2"

    def problems(self, channel: str, name: str) -> list[tuple[int | None, str]]:
        """What is wrong with a template: (line in the template or None, text)."""
        if channel not in CHANNELS:
            return [(None, f"unknown channel {channel!r} (expected {', '.join(CHANNELS)})")]
        path = self.path(channel, name)
        if not path.is_file():
            return [(None, f"template {channel}/{name}.j2 not found in {self.directory}")]
        try:
            source = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            return [
                (None, f"{channel}/{name}.j2: not UTF-8 text ({err.reason} at byte {err.start})")
            ]
        try:
            ast = self.env.parse(source, name=f"{channel}/{name}.j2")
            # Compiling also finds unknown filters and tests, and blocks defined twice.
            self.env.compile(ast, name=f"{channel}/{name}.j2")
        except TemplateSyntaxError as err:
            return [(err.lineno, f"{channel}/{name}.j2:{err.lineno}: {err.message}")]
        if channel == "email":
            from jinja2 import nodes

            blocks = {b.name for b in ast.find_all(nodes.Block)}
            missing = [b for b in EMAIL_BLOCKS if b not in blocks]
            if missing:
                return [(None, f"{channel}/{name}.j2: missing block(s) {', '.join(missing)}")]
        return []

    def render(self, channel: str, name: str, context: dict[str, Any]) -> Rendered:
        try:
            template = self.env.get_template(f"{channel}/{name}.j2")
            if channel != "email":
                return Rendered(body=template.render(context).strip())
            ctx = template.new_context(context)
            parts = {
                block: "".join(template.blocks[block](ctx)).strip()
                for block in ("subject", "html", "text")
                if block in template.blocks
            }
        except TemplateError as err:
            raise RenderError(f"{channel}/{name}.j2: {err}") from err
        if "subject" not in parts or "html" not in parts:
            raise RenderError(f"{channel}/{name}.j2: an email needs subject and html blocks")
        return Rendered(
            body=parts["html"], subject=_header_text(parts["subject"]), text=parts.get("text")
        )

    def render_string(self, source: str, context: dict[str, Any]) -> str:
        try:
            return self.env.from_string(source).render(context)
        except TemplateError as err:
            raise RenderError(f"{source!r}: {err}") from err
