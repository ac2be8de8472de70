"""`dirnet config show`: print the resolved config (defaults <- file chain <- overrides)."""

from __future__ import annotations

import argparse


def add_config_arguments(parser: argparse.ArgumentParser, required: bool = False) -> None:
    """The `--config FILE` option and trailing `key=value` overrides, shared by subcommands."""
    parser.add_argument("--config", required=required, help="YAML config file (configs/*.yaml)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("config", help="inspect configs")
    sub = parser.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    show = sub.add_parser("show", help="print the resolved config as YAML")
    add_config_arguments(show)
    show.set_defaults(func=_show)


def _show(args: argparse.Namespace) -> int:
    from dir_net.config import load_config

    print(load_config(args.config, args.overrides).dump(), end="")
    return 0
