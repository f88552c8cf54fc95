"""Generated PhysioNet-format records for the vitals tests (no data is committed)."""
from __future__ import annotations

from pathlib import Path

import pytest


def write_record(folder: Path, record_id: int, rows: list[tuple[str, str, float | str]],
                 descriptors: dict | None = None) -> Path:
    """Write ``<record_id>.txt`` in the challenge format: descriptors at 00:00, then ``rows``."""
    desc = {"Age": 70, "Gender": 1, "Height": -1, "ICUType": 3, "Weight": 80}
    desc.update(descriptors or {})
    lines = ["Time,Parameter,Value", f"00:00,RecordID,{record_id}"]
    lines += [f"00:00,{k},{v}" for k, v in desc.items()]
    lines += [f"{t},{p},{v}" for t, p, v in rows]
    path = folder / f"{record_id}.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def record_writer(tmp_path):
    def _write(record_id, rows, descriptors=None):
        return write_record(tmp_path, record_id, rows, descriptors)
    return _write


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The vitals models are tiny: one thread avoids contention on small CI machines."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
