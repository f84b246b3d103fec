"""The command explains itself: help for every option, its default, an example per command,
and one line naming the extra when an optional dependency is missing."""

from __future__ import annotations

import sys

import pytest

from shrinkage.cli import build_parser, main


def test_every_option_of_every_command_has_help() -> None:
    parser = build_parser()
    assert set(parser.commands) == {
        "compare",
        "path",
        "select",
        "tune",
        "compact",
        "runs",
        "report",
    }
    for name, command in parser.commands.items():
        for action in command._actions:  # argparse's list of a parser's arguments
            assert action.help and action.help.strip(), f"{name} {action.option_strings}"


@pytest.mark.parametrize(
    "command", ["compare", "path", "select", "tune", "compact", "runs", "report"]
)
def test_each_help_page_has_a_description_defaults_and_an_example(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    page = capsys.readouterr().out
    assert f"\nexamples:\n  shrinkage {command}" in page
    if command in ("compare", "path", "select", "tune"):
        assert "--rule {min,1se}" in page and "(default: " in page
        assert "--seed SEED           splits, initialisation, batch order (default: 0)" in page


def test_the_top_page_speaks_to_users(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    page = capsys.readouterr().out
    assert "``" not in page and "parse, call the library" not in page
    assert "L1, L2, Elastic-Net and group-lasso" in page and "examples:" in page


def test_a_missing_extra_is_one_line_that_names_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna now fails
    monkeypatch.delitem(sys.modules, "shrinkage.experiments.tune", raising=False)
    code = main(["tune", "--data", "digits", "--store", ":memory:", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == ["shrinkage: error: the tune command needs optuna: pip install 'shrinkage[tune]'"]
