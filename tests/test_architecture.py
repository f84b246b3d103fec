"""The shape of the code: the layering contract (and that it catches a violation), what
``import shrinkage`` loads, public torch APIs only, modules of a readable size, and each
layer's vocabulary in its errors."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "shrinkage"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def sources() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def test_import_shrinkage_loads_no_plotting_terminal_ui_or_tuner() -> None:
    code = (
        "import sys, shrinkage, shrinkage.structured; "
        "print(sorted(m for m in ('matplotlib', 'rich', 'optuna') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _copy_with(tmp_path: Path, module: str, line: str) -> Path:
    """The package copied under ``tmp_path`` with ``line`` added to ``module``, and the
    project's contracts beside it."""
    shutil.copytree(SRC, tmp_path / "shrinkage", ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / "shrinkage" / module
    target.write_text(target.read_text() + f"\n{line}\n")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


@pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter is a dev dependency")
@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("penalties/base.py", "import matplotlib", "shrinkage.penalties.base -> matplotlib"),
        ("proximal.py", "from .experiments import Settings", "proximal -> shrinkage.experiments"),
        ("path.py", "import optuna", "shrinkage.path -> optuna"),
        ("regularizer.py", "from .cli import main", "shrinkage.regularizer -> shrinkage.cli"),
        ("structured/groups.py", "import rich", "shrinkage.structured.groups -> rich"),
        ("linear/_solver.py", "from ..neural import build_mlp", "_solver -> shrinkage.neural"),
    ],
)  # fmt: skip
def test_the_layering_contract_catches_a_violation(
    tmp_path: Path, module: str, line: str, broken: str
) -> None:
    folder = _copy_with(tmp_path, module, line)
    env = {"PYTHONPATH": str(folder), "PATH": str(Path(sys.executable).parent)}
    out = subprocess.run(
        [str(LINT_IMPORTS), "--config", str(folder / "pyproject.toml"), "--no-cache"],
        capture_output=True, text=True, cwd=folder, env=env,
    )  # fmt: skip
    assert out.returncode == 1, out.stdout + out.stderr
    assert "BROKEN" in out.stdout and broken in out.stdout, out.stdout


def test_no_private_torch_or_optuna_attribute_in_the_sources() -> None:
    """No ``torch._C``, no hook registries or compile internals of a module, no Optuna
    ``_storage``; torch's multi-tensor ``torch._foreach_*`` operations (listed in torch's
    reference, used by ``torch.optim``) only in the kernel module."""
    banned = re.compile(r"torch\._C|\._forward_hooks|_compiled_call_impl|_global_|\._storage")
    private_torch = re.compile(r"\btorch\._(?!foreach_)\w+|\bnn\.modules\.\w+\._\w+")
    for path in sources():
        text = path.read_text()
        where = path.relative_to(SRC)
        assert not banned.search(text), f"{where}: {banned.search(text)}"
        assert not private_torch.search(text), f"{where}: {private_torch.search(text)}"
        if path.name != "_kernels.py":
            assert "torch._foreach_" not in text, where


def test_only_the_command_line_exits_the_process() -> None:
    for path in sources():
        if path.relative_to(SRC).parts[0] != "cli":
            assert "sys.exit" not in path.read_text(), path.relative_to(SRC)


def test_the_library_names_python_arguments_and_the_command_line_its_options(
    tmp_path: Path,
) -> None:
    from shrinkage.experiments import Settings, load_dataset

    with pytest.raises(ValueError) as error:
        Settings(data="digits", hidden=())
    assert str(error.value).startswith("hidden must be") and "--hidden" not in str(error.value)
    with pytest.raises(ValueError, match=r"^penalties group_inputs needs model mlp"):
        Settings(data="digits", model="linear", penalties=("none", "group_inputs"))
    with pytest.raises(ValueError, match=r"^data 'nope' is neither"):
        load_dataset("nope")

    def cli(*args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "shrinkage.cli", *args, "--store", "s.db", "--quiet"],
            capture_output=True, text=True, cwd=tmp_path,
        )  # fmt: skip
        assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
        return out.stderr

    assert "error: --hidden must be positive layer widths" in cli(
        "compare", "--data", "digits", "--hidden", "0"
    )
    assert "error: --penalties group_inputs needs --model mlp" in cli(
        "compare", "--data", "digits", "--model", "linear", "--penalties", "none,group_inputs"
    )
    assert "error: --penalty group_inputs needs --model mlp" in cli(
        "path", "--data", "digits", "--model", "linear", "--penalty", "group_inputs"
    )
    assert "error: --data 'nope' is neither" in cli("compare", "--data", "nope")


def test_the_command_line_says_which_extra_it_needs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util

    from shrinkage import cli

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "rich" else real(name, *a)
    )
    assert cli.main(["runs"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["shrinkage: the command line needs rich: pip install 'shrinkage[cli]'"]
