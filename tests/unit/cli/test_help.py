"""Every option of every ``dmpreserve`` subcommand has a help text, and every subcommand's ``--help`` works."""

from __future__ import annotations

import argparse

import pytest

from dmpreserve.cli import build_parser, main


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sorted(sub.choices.items()))


def test_every_option_has_help() -> None:
    missing = {
        name: [a.option_strings[-1] for a in sp._actions if a.option_strings and a.dest != "help" and not a.help]
        for name, sp in _subparsers().items()
    }
    missing = {name: options for name, options in missing.items() if options}
    assert not missing, f"options without a help text: {missing}"


@pytest.mark.parametrize("command", list(_subparsers()))
def test_subcommand_help_exits_0(command: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert f"usage: dmpreserve {command}" in capsys.readouterr().out
