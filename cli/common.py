"""What every sub-command shares: its type, exit statuses, JSON output."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from rag.settings import Settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

Command = Callable[[argparse.Namespace, Settings], int]
"""Runs one sub-command with the parsed arguments and the settings; returns the exit status."""

Subparsers = Any
"""``argparse``'s sub-parser action (its class is private): what a module adds its parsers to."""


def add_command(sub: Subparsers, name: str, command: Command, **kwargs: Any) -> argparse.ArgumentParser:
    """A sub-command's parser, bound to the function that runs it."""
    parser: argparse.ArgumentParser = sub.add_parser(name, **kwargs)
    parser.set_defaults(handler=command)
    return parser


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str, ensure_ascii=False))
