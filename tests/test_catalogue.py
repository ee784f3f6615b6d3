"""The findings catalogue: every finding documented, every fix renderable."""

import pathlib

import pytest

from cors_addon.catalogue import FINDINGS, render_fix

README = (pathlib.Path(__file__).resolve().parent.parent / "README.md").read_text()


@pytest.mark.parametrize("finding_id", sorted(FINDINGS))
def test_every_finding_is_listed_in_the_readme(finding_id):
    base = finding_id.removesuffix("-credentials")
    if base.startswith("Preflight") and base[9:] in FINDINGS:
        base = base[9:]
    assert f"`{base}`" in README


@pytest.mark.parametrize("finding_id", sorted(FINDINGS))
def test_every_fix_is_filled_in(finding_id):
    fix = render_fix(finding_id, {"origin": "https://app.test", "methods": "GET, PUT", "headers": "x-a", "max_age": "7200"})
    assert "{" not in fix["header"]
    assert all("{origin}" not in s and "{max_age}" not in s for s in fix["snippets"].values())
    assert FINDINGS[finding_id].severity in ("error", "warning", "info")
