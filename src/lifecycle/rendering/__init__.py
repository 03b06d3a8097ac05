"""Rendering: message templates in a Jinja2 sandbox where an undefined variable is an error."""
