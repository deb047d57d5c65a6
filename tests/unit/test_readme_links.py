"""README and the docs link only to files that ship, and name no reference page the repository lacks."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from testkit.processes import REPO_ROOT

PAGES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_every_relative_link_names_a_file_in_the_repository(page: Path) -> None:
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text())
    local = [link for link in links if "://" not in link and not link.startswith("mailto:")]
    missing = [link for link in local if not (page.parent / link).exists()]
    assert not missing, f"{page.name} links to missing files: {missing}"


def test_reference_pages_named_in_text_exist() -> None:
    # "see PROVIDERS.md" in README, help texts or docstrings must name a page that ships
    named = set()
    for path in [REPO_ROOT / "README.md", *REPO_ROOT.glob("workers/**/*.py"), *REPO_ROOT.glob("cli/*.py"),
                 *REPO_ROOT.glob("models/*.py")]:
        named |= set(re.findall(r"(?<![\w/])((?:docs/)?[A-Z][A-Z_]+\.md)", path.read_text()))
    tracked = set(subprocess.run(["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True).stdout.split())
    assert all(name in tracked or f"docs/{name}" in tracked for name in named), named - tracked
