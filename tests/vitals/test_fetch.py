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
    with tarfile.open(root / "set-a.tar.gz", "w:gz") as tar:
        for rid in (1001, 1002):
            data = f"Time,Parameter,Value\n00:00,RecordID,{rid}\n00:00,Age,60\n00:10,HR,80\n".encode()
            info = tarfile.TarInfo(f"set-a/{rid}.txt")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    (root / "Outcomes-a.txt").write_text("RecordID,SAPS-I,SOFA,Length_of_stay,Survival,In-hospital_death\n1001,10,2,5,-1,0\n1002,20,5,3,2,1\n")
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


def test_fetch_reports_a_missing_file_by_url(mirror, tmp_path):
    problems = fetch(tmp_path / "d", base_url=mirror, sets=["b"])
    assert len(problems) == 1 and "Outcomes-b.txt: HTTP 404" in problems[0]


def test_fetch_cli_exit_code(mirror, tmp_path):
    from cxr_model.cli import main

    assert main(["vitals", "fetch", "--dest", str(tmp_path / "c"), "--base-url", mirror, "--sets", "a"]) == 0
    assert main(["vitals", "fetch", "--dest", str(tmp_path / "c"), "--base-url", mirror, "--sets", "b"]) == 1
