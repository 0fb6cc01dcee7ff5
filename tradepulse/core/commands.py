"""Base for TradePulse management commands: `--json` output, one-line errors, audited as a command.

Subclasses implement `run(**options) -> dict` (the JSON summary) and may print human output
through `self.say(...)`, which is silent under `--json`. A `CommandError` (or a Django
ValidationError) ends the command with a non-zero exit and one clear line on stderr.
"""
from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.serializers.json import DjangoJSONEncoder

from tradepulse.core import context


class TradePulseCommand(BaseCommand):
    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print a machine-readable JSON summary on stdout.")
        self.add_options(parser)

    def add_options(self, parser):
        """Override to add the command's own options."""

    def say(self, text: str = "", *, style=None) -> None:
        if not self._json:
            self.stdout.write(style(text) if style else text)

    def handle(self, *args, **options):
        self._json = options.get("json", False)
        name = type(self).__module__.rsplit(".", 1)[-1]
        with context.acting(actor_label=f"command:{name}"):
            try:
                summary = self.run(**options)
            except ValidationError as exc:
                raise CommandError(_one_line("; ".join(exc.messages))) from None
            except (ValueError, LookupError) as exc:
                raise CommandError(_one_line(str(exc))) from None
        if self._json:
            self.stdout.write(json.dumps(summary, cls=DjangoJSONEncoder, allow_nan=False))

    def run(self, **options) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError


def _one_line(text: str) -> str:
    return " ".join(str(text).split())
