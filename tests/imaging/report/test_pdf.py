"""report.pdf is optional: without a browser the error says what to install."""
import pytest

from cxr_model.imaging.report import pdf


def test_without_chromium_the_error_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(pdf.shutil, "which", lambda name: None)
    assert pdf.find_chromium() is None
    with pytest.raises(pdf.PdfUnavailable, match="make browser"):
        pdf.write_pdf(tmp_path / "report.html")
