"""A real browser opens report.html from disk, offline, and renders the ROC plot."""
import pytest

from tests.imaging.report.runfolder import make_run

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def report(tmp_path_factory, kermany_dir, cxr_bundle):
    """The report.html that the evaluate pipeline itself wrote (the CLI's path)."""
    run = make_run(tmp_path_factory.mktemp("eval-browser") / "run", kermany_dir, cxr_bundle, per_group=4)
    assert (run / "report.html").exists()
    return run / "report.html"


def test_report_renders_its_roc_plot_from_a_file_without_network(browser, report, artifacts_dir):
    context = browser.new_context(viewport={"width": 1300, "height": 900}, offline=True)
    page = context.new_page()
    requests, errors = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(report.as_uri(), timeout=120_000)
        page.wait_for_selector("#roc-curve .main-svg", timeout=120_000)
        # the ROC trace itself is drawn: chance line, curve and operating point
        assert page.locator("#roc-curve .scatterlayer .trace").count() == 3
        assert "AUROC" in page.locator("#roc-curve .gtitle").text_content()
        for div in ("pr-curve", "confusion-matrix", "reliability-diagram"):
            assert page.locator(f"#{div} .main-svg").count() >= 1, div
        assert page.locator("figure.card img").count() >= 1  # failure gallery thumbnails
        page.screenshot(path=str(artifacts_dir / "evaluation_report.png"), full_page=True)
    finally:
        context.close()
    assert not errors, errors
    assert all(u.startswith(("file:", "data:")) for u in requests), [u for u in requests if not u.startswith("file:")]


def test_report_prints_to_a_multi_page_pdf(browser, report, tmp_path):
    import re

    from cxr_model.imaging.report.pdf import write_pdf

    pdf = write_pdf(report, tmp_path / "report.pdf", browser=browser).read_bytes()
    assert pdf.startswith(b"%PDF-")
    assert len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", pdf)) >= 2
