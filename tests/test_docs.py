"""The README answers first and stays short; docs/options.md lists every option with its ini key; every
link between the README and docs/ leads to a file and heading that exist."""

from __future__ import annotations

import re
from pathlib import Path

from pytest_edgeprof.plugin.options import OPTIONS

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _heading_anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_the_readme_is_short_and_gives_the_two_set_up_commands_first():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 250
    first_screen = "\n".join(lines[:40])
    assert "make bench" in first_screen and "make test" in first_screen


def test_every_option_has_its_row_with_its_ini_key_in_the_options_reference():
    rows = [line for line in (ROOT / "docs" / "options.md").read_text().splitlines() if line.startswith("| `--")]
    for option in OPTIONS.values():
        row = next((r for r in rows if r.startswith(f"| `{option.flag} ") or r.startswith(f"| `{option.flag}`")), None)
        assert row is not None, f"docs/options.md has no row for {option.flag}"
        assert f"| `{option.ini}` |" in row, f"docs/options.md: {option.flag} without its ini key {option.ini}"


def test_links_between_the_readme_and_docs_lead_somewhere():
    for page in PAGES:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if target.startswith(("http://", "https://")):
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path) if path else page
            assert linked.is_file(), f"{page.name}: link to {target}: no such file"
            if anchor:
                headings = [_heading_anchor(line.lstrip("#")) for line in linked.read_text().splitlines()
                            if line.startswith("#")]
                assert anchor in headings, f"{page.name}: link to {target}: no such heading"
