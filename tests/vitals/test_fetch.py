"""``vitals fetch`` against a local HTTP server serving generated challenge files."""
from __future__ import annotations

import functools
import io
import tarfile
import threading
from http.server import HTTPServer, SimpleHTTPRequestHandler

import pytest

from cxr_model.vitals.fetch import fetch
from cxr_model.vitals.reader import read_dir


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def mirror(tmp_path):
    root = tmp_path / "mirror"
    root.mkdir()
    for s, ids in (("a", (1001, 1002)), ("c", (3001,))):
        with tarfile.open(root / f"set-{s}.tar.gz", "w:gz") as tar:
            for rid in ids:
                data = f"Time,Parameter,Value\n00:00,RecordID,{rid}\n00:00,Age,60\n00:10,HR,80\n".encode()
                info = tarfile.TarInfo(f"set-{s}/{rid}.txt")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        (root / f"Outcomes-{s}.txt").write_text("RecordID,SAPS-I,SOFA,Length_of_stay,Survival,In-hospital_death\n"
                                                + "".join(f"{rid},10,2,5,-1,{rid % 2}\n" for rid in ids))
    server = HTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_fetch_downloads_and_unpacks_a_set(mirror, tmp_path):
    dest = tmp_path / "physionet2012"
    assert fetch(dest, base_url=mirror, sets=["a"]) == []
    records, errors = read_dir(dest / "set-a")
    assert [r.record_id for r in records] == [1001, 1002] and errors == []
    assert (dest / "Outcomes-a.txt").read_text().startswith("RecordID,SAPS-I")
    assert fetch(dest, base_url=mirror, sets=["a"]) == []  # second run keeps what is there


def test_fetch_takes_set_c_and_names_a_set_that_does_not_exist(mirror, tmp_path):
    dest = tmp_path / "physionet2012"
    assert fetch(dest, base_url=mirror, sets=["c", "d"]) == ["set-d: unknown set (the public sets are a, b and c)"]
    records, errors = read_dir(dest / "set-c")
    assert [r.record_id for r in records] == [3001] and errors == []
    assert (dest / "Outcomes-c.txt").read_text().splitlines()[1] == "3001,10,2,5,-1,1"
    assert not (dest / "set-d").exists()


def test_fetch_reports_a_missing_file_by_url(mirror, tmp_path):
    problems = fetch(tmp_path / "d", base_url=mirror, sets=["b"])
    assert len(problems) == 1 and "Outcomes-b.txt: HTTP 404" in problems[0]


def test_fetch_cli_exit_code(mirror, tmp_path):
    from cxr_model.cli import main

    assert main(["vitals", "fetch", "--dest", str(tmp_path / "c"), "--base-url", mirror, "--sets", "a"]) == 0
    assert main(["vitals", "fetch", "--dest", str(tmp_path / "c"), "--base-url", mirror, "--sets", "b"]) == 1
