"""Every code block of the README and the documentation pages runs as shown, every
docstring example (``>>>``) gives the output it shows, and every public function and method
with parameters documents them in an ``Args:`` section.

A page's ``python`` blocks run in order in one namespace (a later block may use an earlier
one's names), in a fresh working directory. A block preceded by a line
``<!-- skip-block: REASON -->`` is not run (the reason says why: a cluster, a download).
"""

from __future__ import annotations

import doctest
import importlib
import os
import pkgutil
import re
import traceback
import types
from dataclasses import dataclass
from pathlib import Path

import pytest

import shrinkage
from docstrings import undocumented

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```python\n(.*?)^```", re.M | re.S)
SKIP = re.compile(r"<!-- skip-block: (.+?) -->\s*\n$")


@dataclass(frozen=True)
class Block:
    """One ``python`` block of a page: where it starts, its code, and why it is skipped."""

    page: Path
    line: int
    code: str
    skip: str | None


def blocks(page: Path) -> list[Block]:
    """The ``python`` blocks of a Markdown page, in order."""
    text = page.read_text(encoding="utf-8")
    out = []
    for match in FENCE.finditer(text):
        before = text[: match.start()]
        skip = SKIP.search(before[-300:])
        out.append(Block(page, before.count("\n") + 1, match.group(1), skip and skip.group(1)))
    return out


class BlockFailed(AssertionError):
    """A block raised: the page, the block's first line, and the error."""


def run_page(page: Path, workdir: Path) -> int:
    """Run the page's blocks in one namespace inside ``workdir``; returns how many ran."""
    namespace: dict[str, object] = {"__name__": "__main__"}
    ran = 0
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        for block in blocks(page):
            if block.skip:
                continue
            try:
                exec(compile(block.code, f"{page.name}:{block.line}", "exec"), namespace)
            except Exception as error:
                detail = "".join(traceback.format_exception_only(error)).strip()
                where = f"{page.relative_to(ROOT) if page.is_relative_to(ROOT) else page}"
                raise BlockFailed(f"{where}, block at line {block.line}: {detail}") from error
            ran += 1
    finally:
        os.chdir(cwd)
    return ran


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_block_of_the_page_runs(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHRINKAGE_STORE", str(tmp_path / "runs.db"))
    found = blocks(page)
    skipped = [b for b in found if b.skip]
    assert len(skipped) <= 2, f"{page.name}: {len(skipped)} blocks skipped; make them run"
    assert run_page(page, tmp_path) == len(found) - len(skipped)


def test_a_broken_block_fails_with_its_page_and_line(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# A page\n\n```python\nx = 1\n```\n\ntext\n\n```python\nx + undefined\n```\n")
    with pytest.raises(BlockFailed, match=r"page\.md, block at line 9: NameError: .*undefined"):
        run_page(page, tmp_path)
    skipped = "<!-- skip-block: needs a cluster -->\n```python\nraise SystemExit\n```\n"
    page.write_text(skipped)
    assert run_page(page, tmp_path) == 0 and blocks(page)[0].skip == "needs a cluster"


def _modules() -> list[str]:
    """Every module of the package (those whose optional dependency is missing left out)."""
    names = ["shrinkage"]
    for info in pkgutil.walk_packages(shrinkage.__path__, "shrinkage."):
        if info.name.endswith("__main__"):
            continue
        try:
            importlib.import_module(info.name)
        except ImportError:
            continue
        names.append(info.name)
    return names


@pytest.mark.parametrize("name", _modules())
def test_the_docstring_examples_give_what_they_show(name: str) -> None:
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(module, name, module=module):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed"


API_MODULES = [
    "shrinkage",
    "shrinkage.penalties",
    "shrinkage.path",
    "shrinkage.linear",
    "shrinkage.structured",
    "shrinkage.neural.estimators",
    "shrinkage.experiments",
    "shrinkage.experiments.runner",
]
"""The modules whose public names the API reference shows (the Keras port needs a backend
at import, and is checked by the Keras tests' run of the same function)."""


@pytest.mark.parametrize("name", API_MODULES)
def test_public_functions_document_their_arguments(name: str) -> None:
    assert undocumented(importlib.import_module(name)) == []


def test_an_undocumented_argument_is_caught() -> None:
    module = types.ModuleType("shrinkage_planted")

    def plain(x: int) -> int:
        """Twice ``x``."""
        return 2 * x

    def shaped(x: int) -> int:
        """Twice ``x``.

        Args:
            x: a number.
        """
        return 2 * x

    module.__all__ = ["plain", "shaped"]  # type: ignore[attr-defined]
    module.plain, module.shaped = plain, shaped  # type: ignore[attr-defined]
    assert undocumented(module) == ["shrinkage_planted.plain"]
