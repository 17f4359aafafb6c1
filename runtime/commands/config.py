"""`holevision config check|example`."""

from __future__ import annotations

import argparse


def register(registry) -> None:
    registry.group("config", help="check or print a service configuration (TOML)",
                   examples="  holevision config example > holevision.toml\n"
                            "  holevision config check holevision.toml")
    p = registry.command("check", group="config", help="validate a config file; errors name the field",
                         examples="  holevision config check /etc/holevision/holevision.toml")
    p.add_argument("file", help="TOML config file")
    p.set_defaults(func=_check)
    p = registry.command("example", group="config", help="print a complete config with every default",
                         examples="  holevision config example > /etc/holevision/holevision.toml")
    p.set_defaults(func=_example)


def _check(args: argparse.Namespace) -> int:
    from holevision.runtime.config import load_config

    config = load_config(args.file)
    print(f"{args.file}: OK (source={config.source.kind}, model={config.model.bundle}, "
          f"trigger={config.trigger.mode})")
    return 0


def _example(args: argparse.Namespace) -> int:
    from holevision.runtime.config import example_config

    print(example_config(), end="")
    return 0
