import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
WILD = ROOT / "recordings" / "wild"


@pytest.fixture
def wild():
    return lambda name: str(WILD / name)
