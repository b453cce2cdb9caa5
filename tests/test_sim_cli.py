"""``wiregate sim``'s arguments, refused before anything is built (no Verilator needed)."""

import pytest

from wiregate.sw.cli import main
from wiregate.sw.profiles import PROFILES


def test_a_profile_not_built_for_the_width_is_refused(capsys):
    name = next(n for n, p in PROFILES.items() if 8 not in p.widths)
    assert main(["sim", "--profile", name, "--width", "8"]) == 2
    error = capsys.readouterr().err
    assert f"profile {name} is built for W = 1, not 8" in error


def test_an_unknown_profile_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["sim", "--profile", "no-such-board", "--width", "1"])
    assert exit_.value.code == 2
    assert "invalid choice: 'no-such-board'" in capsys.readouterr().err
