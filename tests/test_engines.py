"""Each engine's Access-Control-Max-Age parsing (cors-semantics.md section 7.2)."""

import pytest

from cors_addon.engines import CHROMIUM, FIREFOX, WEBKIT, get_engine

CASES = [
    # raw values,          chromium,          firefox,          webkit
    ([],                  (5, "absent"),     (5, "absent"),     (5, "absent")),
    (["600"],             (600, "valid"),    (600, "valid"),    (600, "valid")),
    (["86400"],           (7200, "capped"),  (86400, "valid"),  (600, "capped")),
    (["100000"],          (7200, "capped"),  (86400, "capped"), (600, "capped")),
    (["0"],               (0, "zero"),       (0, "zero"),       (0, "zero")),
    (["-1"],              (0, "negative"),   (0, "negative"),   (0, "negative")),
    (["abc"],             (5, "invalid"),    (0, "invalid"),    (5, "invalid")),
    (["10.5"],            (5, "invalid"),    (0, "invalid"),    (5, "invalid")),
    (["+600"],            (600, "valid"),    (0, "invalid"),    (600, "valid")),
    (["600", "600"],      (5, "invalid"),    (0, "invalid"),    (5, "invalid")),
    (["9" * 30],          (5, "overflow"),   (86400, "capped"), (5, "overflow")),
]


@pytest.mark.parametrize("values, chromium, firefox, webkit", CASES)
def test_max_age_parsing_per_engine(values, chromium, firefox, webkit):
    for engine, expected in ((CHROMIUM, chromium), (FIREFOX, firefox), (WEBKIT, webkit)):
        age = engine.parse_max_age(values)
        assert (age.seconds, age.reason) == expected, engine.name


def test_engine_lookup_names_the_choices():
    assert get_engine("Firefox") is FIREFOX
    with pytest.raises(ValueError, match="chromium, firefox, webkit"):
        get_engine("opera")
