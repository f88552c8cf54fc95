"""Download the public PhysioNet/CinC Challenge 2012 sets for real users.

Files (PhysioNet, https://physionet.org/content/challenge-2012/1.0.0/): ``set-a.tar.gz``,
``set-b.tar.gz``, ``set-c.tar.gz`` and their ``Outcomes-a.txt``, ``Outcomes-b.txt``, ``Outcomes-c.txt`` (set C, the
challenge's hidden test set, with its outcomes published since; more stays to train on: ``train-ensemble --extra``). They land under ``<dest>/`` as
``set-a/<RecordID>.txt`` and ``Outcomes-a.txt``, the layout the reader and settings expect.
"""
from __future__ import annotations

import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

DEFAULT_BASE_URL = "https://physionet.org/files/challenge-2012/1.0.0/"


def _download(url: str, target: Path, timeout: float) -> None:
    with urllib.request.urlopen(url, timeout=timeout) as resp, open(target, "wb") as fh:
        shutil.copyfileobj(resp, fh)


def _extract(archive: Path, dest: Path) -> int:
    """Extract a tarball safely (no absolute paths, no links out); returns the number of files."""
    with tarfile.open(archive, "r:gz") as tar:
        members = [m for m in tar.getmembers() if m.isfile() or m.isdir()]
        tar.extractall(dest, members=members, filter="data")
        return sum(m.isfile() for m in members)


def fetch(dest: str | Path, base_url: str = DEFAULT_BASE_URL, sets=("a", "b"), timeout: float = 60.0) -> list[str]:
    """Download and unpack the chosen sets; existing files are kept.

    Returns:
        Problems as ``"<file>: <what went wrong>"``; empty when everything is in place.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    base = base_url if base_url.endswith("/") else base_url + "/"
    problems = []
    for s in sets:
        s = s.strip().lower()
        if s not in ("a", "b", "c"):
            problems.append(f"set-{s}: unknown set (the public sets are a, b and c)")
            continue
        outcome = dest / f"Outcomes-{s}.txt"
        folder = dest / f"set-{s}"
        with tempfile.TemporaryDirectory(dir=dest) as tmp:
            try:
                if not outcome.exists():
                    _download(base + outcome.name, Path(tmp) / outcome.name, timeout)
                    shutil.move(str(Path(tmp) / outcome.name), outcome)
                if not (folder.exists() and any(folder.glob("*.txt"))):
                    archive = Path(tmp) / f"set-{s}.tar.gz"
                    _download(base + archive.name, archive, timeout)
                    n = _extract(archive, dest)
                    if n == 0:
                        problems.append(f"{archive.name}: archive holds no files")
            except urllib.error.HTTPError as exc:
                problems.append(f"{exc.url}: HTTP {exc.code} {exc.reason}")
            except (urllib.error.URLError, TimeoutError, OSError) as exc:
                problems.append(f"{base}set-{s}: download failed ({getattr(exc, 'reason', exc)})")
            except tarfile.TarError as exc:
                problems.append(f"set-{s}.tar.gz: not a valid tar.gz ({exc})")
    return problems
