"""`holevision service install|uninstall`: the systemd unit and example config."""

from __future__ import annotations

import argparse


def register(registry) -> None:
    registry.group("service", help="install or remove the systemd service",
                   examples="  sudo holevision service install\n  holevision service install --dry-run")
    for name, help_text in (("install", "install holevision.service + /etc/holevision/holevision.toml and start it"),
                            ("uninstall", "stop and remove holevision.service (config and journal are kept)")):
        p = registry.command(name, group="service", help=help_text,
                             examples=f"  sudo holevision service {name}\n"
                                      f"  holevision service {name} --dry-run      print the commands only")
        p.add_argument("--dry-run", action="store_true", help="print what would be done")
        if name == "install":
            p.add_argument("--no-start", action="store_true", help="install and enable, but do not start")
        p.set_defaults(func=run, action=name)


def systemd_folder():
    """The repository's systemd/ folder (source checkout or editable install)."""
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "systemd"
    if not (folder / "holevision.service").is_file():
        raise FileNotFoundError(f"{folder}: systemd files not found; run systemd/install.sh from a holevision "
                                "source checkout")
    return folder


def run(args: argparse.Namespace) -> int:
    import subprocess

    folder = systemd_folder()
    script = folder / ("install.sh" if args.action == "install" else "uninstall.sh")
    command = ["sh", str(script)]
    if args.dry_run:
        command.append("--dry-run")
    if getattr(args, "no_start", False):
        command.append("--no-start")
    print("$ " + " ".join(command))
    return subprocess.call(command)
