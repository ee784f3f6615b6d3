"""The findings catalogue: every finding documented, every fix renderable."""


import pytest

from cors_addon.catalogue import FINDINGS, render_fix
from tests.conftest import ROOT

ENGINE_DOC = (ROOT / "docs" / "engine.md").read_text()
README = (ROOT / "README.md").read_text()


def test_the_readme_links_to_the_findings_and_stays_short():
    """The README is for users (at most 150 lines); the details live in docs/."""
    assert "(docs/engine.md)" in README
    assert len(README.splitlines()) <= 150


@pytest.mark.parametrize("finding_id", sorted(FINDINGS))
def test_every_finding_is_documented(finding_id):
    base = finding_id.removesuffix("-credentials")
    if base.startswith("Preflight") and base[9:] in FINDINGS:
        base = base[9:]
    assert f"`{base}`" in ENGINE_DOC


@pytest.mark.parametrize("finding_id", sorted(FINDINGS))
def test_every_fix_is_filled_in(finding_id):
    fix = render_fix(finding_id, {"origin": "https://app.test", "methods": "GET, PUT", "headers": "x-a", "max_age": "7200"})
    assert "{" not in fix["header"]
    assert all("{origin}" not in s and "{max_age}" not in s for s in fix["snippets"].values())
    assert FINDINGS[finding_id].severity in ("error", "warning", "info")
