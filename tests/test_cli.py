"""Every command has help that teaches (examples), and the CLI reports errors without tracebacks."""

from __future__ import annotations

import argparse

import pytest

from holevision.runtime import cli


def _all_parsers(parser: argparse.ArgumentParser, path=()):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _all_parsers(sub, path + (name,))


def test_every_command_has_examples():
    parser = cli.build_parser()
    missing = [" ".join(path) for path, p in _all_parsers(parser) if path and "examples:" not in (p.epilog or "")]
    assert not missing, f"commands without examples in --help: {missing}"


def test_top_level_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "config" in out and "examples:" in out


def test_user_errors_are_one_line_not_tracebacks(tmp_path, capsys):
    missing = tmp_path / "nope.toml"
    assert cli.main(["config", "check", str(missing)]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "file not found" in err and "Traceback" not in err
