"""The README's configuration table names every setting the platform reads."""

from __future__ import annotations

from chatstream.settings import REPO_ROOT, Settings


def test_every_setting_is_in_the_readme() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    for name in Settings.model_fields:
        assert f"`CHATSTREAM_{name.upper()}`" in readme, name


def test_readme_gives_the_two_commands() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
