"""The HTML report: rendered from stored records, opened in headless Chromium."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from shrinkage.experiments import Settings, run_experiment
from shrinkage.experiments.report import FIGURES, importances, load_run, render
from shrinkage.experiments.store import Store

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    root = tmp_path_factory.mktemp("report")
    settings = Settings(
        data="digits",
        penalties=("none", "l1", "l2", "elasticnet", "group_inputs"),
        hidden=(64,),
        epochs=10,
        path_epochs=3,
        n_lambdas=5,
    )
    with Store(root / "runs.db") as store:
        run_id = run_experiment(settings, store)
        view = load_run(store, run_id)
    return render(view, root / "out"), view


def test_report_files_and_importances(report: tuple[Path, object]) -> None:
    html, view = report
    assert html.is_file() and html.stat().st_size > 10_000
    for stem in FIGURES:
        png = html.parent / f"{stem}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = html.read_text()
    assert text.count("data:image/png;base64,") == len(FIGURES)
    assert "<table>" in text and "group_inputs" in text
    # importances come from the path records: a feature's importance is a lam of the grid at
    # which it was selected, or 0 when it never was
    for name in ("l1", "group_inputs"):
        values = importances(view, name)  # type: ignore[arg-type]
        grid = {p.lam for p in view.paths[name][0]}  # type: ignore[attr-defined]
        assert all(v == 0 or v in grid for v in values)
        assert len(values) == 64


@pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("SHRINKAGE_REQUIRE_BROWSER"),
    reason="Debian's chromium is not installed (.ci/run installs it and requires this test)",
)
def test_report_loads_in_headless_chromium(report: tuple[Path, object]) -> None:
    assert CHROMIUM is not None, "chromium is required (SHRINKAGE_REQUIRE_BROWSER is set)"
    from playwright import sync_api

    html, _ = report
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(html.as_uri(), wait_until="load")
            widths = page.evaluate(
                "Array.from(document.images).map(i => i.complete ? i.naturalWidth : 0)"
            )
            assert len(widths) == len(FIGURES)
            assert all(w > 0 for w in widths), widths
            assert "shrinkage" in page.title()
            page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
            assert not errors
        finally:
            browser.close()
    assert (ARTIFACTS / "report.png").stat().st_size > 10_000
