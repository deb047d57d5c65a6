"""`payhooks up`'s dev secrets: ProcessOut's Basic credentials among them, added to an older file."""
from __future__ import annotations

from pathlib import Path

from cli import devsecrets


def test_fresh_secrets_include_processout_basic_credentials(tmp_path: Path) -> None:
    values, created = devsecrets.ensure(tmp_path)
    assert created
    user, colon, password = values["PAYHOOKS_PROCESSOUT_BASIC_AUTH"].partition(":")
    assert user and colon and len(password) >= 16
    assert devsecrets.ensure(tmp_path) == (values, False)  # read back, unchanged


def test_a_file_from_before_gets_the_missing_ones_and_keeps_the_rest(tmp_path: Path) -> None:
    (tmp_path / "secrets.env").write_text("# old\nPAYHOOKS_YOCO_SECRETS=whsec_old\n")
    values, created = devsecrets.ensure(tmp_path)
    assert not created and values["PAYHOOKS_YOCO_SECRETS"] == "whsec_old"
    assert "PAYHOOKS_PROCESSOUT_BASIC_AUTH" in values
    text = (tmp_path / "secrets.env").read_text()
    assert text.startswith("# old\nPAYHOOKS_YOCO_SECRETS=whsec_old\n")
    assert devsecrets.ensure(tmp_path) == (values, False)


def test_a_last_line_without_a_newline_stays_intact(tmp_path: Path) -> None:
    (tmp_path / "secrets.env").write_text("PAYHOOKS_API_TOKEN=tok")
    values, _ = devsecrets.ensure(tmp_path)
    assert values["PAYHOOKS_API_TOKEN"] == "tok"
    assert devsecrets.ensure(tmp_path)[0]["PAYHOOKS_API_TOKEN"] == "tok"
