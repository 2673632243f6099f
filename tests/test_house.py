"""The package's import house stays within the redesign's targets (scripts/house.py)."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "house.py"


def survey():
    spec = importlib.util.spec_from_file_location("house", SCRIPT)
    house = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(house)
    return house, house.survey()


def test_no_circle_no_back_arrow_few_floors_no_giant_room_or_file():
    house, found = survey()
    assert found["module_cycles"] == [] and found["room_cycles"] == [] and found["back_arrows"] == []
    assert found["floors"] <= house.MAX_FLOORS, found["longest_chain"]
    assert [(room, share) for room, _, share in found["rooms"] if share > house.MAX_ROOM_SHARE] == []
    assert found["long_files"] == []
