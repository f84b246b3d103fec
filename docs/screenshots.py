"""Screenshots of the built site in headless Chromium, kept in ``test-artifacts/docs``: the
home page, one gallery example with its figure, and one API page; and a summary line of the
build (pages, gallery examples). ``make docs`` runs it after the build.

    python docs/screenshots.py [docs/_build/html]

Without Debian's ``chromium`` it says so and only prints the summary, unless
``SHRINKAGE_REQUIRE_BROWSER`` is set (as CI does): then it fails.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "test-artifacts" / "docs"
SHOTS = {
    "home.png": "index.html",
    "gallery-example.png": "auto_examples/plot_weight_histograms.html",
    "api.png": "api.html",
}


def shoot(site: Path, chromium: str) -> None:
    """One full-page screenshot per entry of :data:`SHOTS`; fails on a page error or on an
    image that did not load."""
    from playwright import sync_api

    OUT.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-gpu", "--no-first-run"]
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            for name, path in SHOTS.items():
                page.goto((site / path).as_uri(), wait_until="load")
                widths = page.evaluate(
                    "Array.from(document.images).map(i => i.complete ? i.naturalWidth : 0)"
                )
                if any(w == 0 for w in widths):
                    raise SystemExit(f"screenshots: an image of {path} did not load")
                page.screenshot(path=str(OUT / name), full_page=name != "api.png")
            if errors:
                raise SystemExit(f"screenshots: page errors {errors}")
        finally:
            browser.close()


def main() -> int:
    site = (Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "_build" / "html").resolve()
    pages = sorted(site.rglob("*.html"))
    examples = sorted((site / "auto_examples").glob("plot_*.html"))
    print(f"docs: {len(pages)} pages, {len(examples)} gallery examples run, in {site}")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if os.environ.get("SHRINKAGE_REQUIRE_BROWSER"):
            print("screenshots: chromium is required (SHRINKAGE_REQUIRE_BROWSER is set)")
            return 1
        print("screenshots: Debian's chromium is not installed; skipped")
        return 0
    shoot(site, chromium)
    print(f"screenshots: {', '.join(SHOTS)} in {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
