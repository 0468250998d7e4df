"""The commands' argument errors: one line naming the fix, before any store is touched."""

from __future__ import annotations

import pytest

from carbonpipe import cli


@pytest.mark.parametrize(("argv", "says"), [
    (["budget", "set", "--scope", "user:a", "--period", "month"], "exactly one of --limit-g"),
    (["budget", "set", "--scope", "user:a", "--period", "month", "--limit-g", "1",
      "--limit-kwh", "1"], "exactly one of --limit-g"),
    (["budget", "set", "--scope", "team:x", "--period", "month", "--limit-g", "1"],
     "user:NAME, tag:KEY=VALUE or org"),
    (["budget", "set", "--scope", "org", "--period", "month", "--limit-g", "-5"], "> 0"),
    (["report", "--by", "team"], "tag:KEY"),
    (["report", "--since", "yesterday"], "give a UTC date"),
])  # fmt: skip
def test_bad_arguments_are_one_line_errors(argv: list[str], says: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv) != 0
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_unknown_period_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["budget", "set", "--scope", "org", "--period", "week", "--limit-g", "1"])
    assert exc.value.code == 2
