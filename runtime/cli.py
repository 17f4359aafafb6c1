"""The one command line, `holevision`, with subcommands.

Each subcommand lives in its own small module that exposes ``register(registry)``. Those modules
import only the standard library at import time, so ``holevision --help`` (and every ``--help``)
works on an edge box that installed the runtime extra alone; the heavy imports (torch, onnx,
onnxruntime, zmq) happen inside the command's ``run`` function.

The CLI is the one place that names commands from all three packages; it loads them by module name.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence

# Modules that register subcommands, in the order they appear in `holevision --help`.
COMMAND_MODULES: tuple[str, ...] = (
    "holevision.runtime.commands.config",
    "holevision.runtime.commands.detect",
    "holevision.runtime.commands.bench_detect",
    "holevision.calibration.commands",
    "holevision.export.commands.synth",
    "holevision.export.commands.data",
    "holevision.export.commands.train",
    "holevision.export.commands.distill",
    "holevision.export.commands.evaluate",
    "holevision.export.commands.export",
    "holevision.export.commands.train_verifier",
    "holevision.runtime.commands.bundle",
    "holevision.runtime.commands.bench_model",
    "holevision.runtime.commands.recipe",
    "holevision.runtime.commands.bench_inspect",
    "holevision.runtime.commands.run",
    "holevision.runtime.commands.demo",
    "holevision.runtime.commands.modbus",
    "holevision.runtime.commands.results",
    "holevision.runtime.commands.service",
    "holevision.runtime.commands.bench_pipeline",
)

EPILOG = """\
examples:
  holevision demo                                  synthetic camera + bundled model + ZeroMQ/Modbus on loopback
  holevision detect part.png --overlay out/        find, measure and number the holes in an image
  holevision run --config /etc/holevision/holevision.toml
  holevision synth --out data/train --count 2000 --seed 1 --style mixed
  holevision calib intrinsics --images 'cal/*.png' --board chessboard:9x6:25 --out camera.json
  holevision <command> --help                      every command has its own examples
"""


class MissingExtraError(RuntimeError):
    """A command needs an optional dependency that is not installed."""


def require(module: str, extra: str):
    """Import ``module`` or raise a MissingExtraError naming the pip extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - exercised in the runtime-only venv test
        raise MissingExtraError(
            f"this command needs '{module}', which is not installed: pip install 'holevision[{extra}]'"
        ) from exc


class CommandRegistry:
    """Hands command modules a place to add their parsers; groups (``calib``, ``bench``...) are shared."""

    def __init__(self, subparsers: argparse._SubParsersAction):
        self._subparsers = subparsers
        self._groups: dict[str, argparse._SubParsersAction] = {}

    def command(self, name: str, *, help: str, description: str = "", examples: str = "",
                group: str | None = None) -> argparse.ArgumentParser:
        """Add a command (``holevision NAME`` or ``holevision GROUP NAME``) and return its parser.

        The caller adds arguments and calls ``parser.set_defaults(func=run)`` where ``run(args) -> int``.
        """
        subparsers = self._groups[group] if group else self._subparsers
        if group and group not in self._groups:
            raise KeyError(f"command group {group!r} is not registered; call registry.group() first")
        epilog = "examples:\n" + examples.rstrip() + "\n" if examples else None
        return subparsers.add_parser(
            name, help=help, description=description or help, epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    def group(self, name: str, *, help: str, examples: str = "") -> None:
        """Declare a command group such as ``calib``; safe to call from several modules."""
        if name in self._groups:
            return
        parser = self._subparsers.add_parser(
            name, help=help, description=help,
            epilog=("examples:\n" + examples.rstrip() + "\n") if examples else None,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        parser.set_defaults(func=lambda args, _p=parser: _print_help(_p))
        self._groups[name] = parser.add_subparsers(title="commands", metavar="COMMAND")


def _print_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def build_parser(modules: Sequence[str] = COMMAND_MODULES) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="holevision",
        description="Find holes on machined parts, measure them to a fraction of a pixel, express them "
                    "in the robot's base frame and hand them to robots and PLCs.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"holevision {_version()}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.set_defaults(func=lambda args, _p=parser: _print_help(_p))
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    registry = CommandRegistry(subparsers)
    for name in modules:
        importlib.import_module(name).register(registry)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("holevision")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return int(func(args) or 0)
    except MissingExtraError as exc:
        print(f"holevision: {exc}", file=sys.stderr)
        return 3
    except (ValueError, OSError) as exc:
        # Validation errors (config, bundle, images, calibration files) carry a message that names the
        # file and field; show it, not a traceback. -vv shows the traceback for developers.
        if args.verbose >= 2:
            raise
        print(f"holevision: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("holevision: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
