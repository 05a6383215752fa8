"""Optional extras: without one, its features fail with one line naming the install command.

The message is the one the README's install notes promise, e.g. ``error: crossmargin replay
needs the ledger extra: pip install 'crossmargin[ledger]'`` (exit code 2, no traceback). Each
subprocess blocks the extra's packages (``sys.modules[name] = None`` makes ``import name``
raise ``ModuleNotFoundError``, as on an install without them) before crossmargin is imported.
"""

from __future__ import annotations

import subprocess
import sys
from importlib import import_module
from pathlib import Path

import pytest

from crossmargin.model import CrossMarginError
from crossmargin.model.extras import MissingExtraError, needs_extra

LEDGER = ("sqlalchemy", "alembic", "psycopg")
DISTRIBUTED = ("dask", "distributed")
PLOTS = ("matplotlib",)


def _python(blocked: tuple[str, ...], code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter where the ``blocked`` packages cannot be imported."""
    prelude = f"import sys\nfor name in {blocked!r}:\n    sys.modules[name] = None\n"
    return subprocess.run(
        [sys.executable, "-c", prelude + code, *args], capture_output=True, text=True, timeout=300
    )


def _cli(blocked: tuple[str, ...], *args: str) -> subprocess.CompletedProcess[str]:
    """``crossmargin ARGS`` without the ``blocked`` packages."""
    return _python(blocked, "from crossmargin.cli import main\nmain()\n", *args)


def test_a_missing_package_names_the_extra_and_its_install_command() -> None:
    with pytest.raises(MissingExtraError) as caught, needs_extra("plots", "heat maps"):
        import_module("absent_optional_package")
    assert str(caught.value) == "heat maps needs the plots extra: pip install 'crossmargin[plots]'"
    assert isinstance(caught.value, CrossMarginError)
    assert (caught.value.path, caught.value.extra) == ("", "plots")
    assert caught.value.module == "absent_optional_package"


def test_a_missing_module_of_this_package_is_not_taken_for_a_missing_extra() -> None:
    with pytest.raises(ModuleNotFoundError) as caught, needs_extra("ledger", "crossmargin.ledger"):
        import_module("crossmargin.absent_module")
    assert not isinstance(caught.value, MissingExtraError)
    assert caught.value.name == "crossmargin.absent_module"


def test_an_outer_feature_renames_the_same_extra_and_keeps_another() -> None:
    with (
        pytest.raises(MissingExtraError) as same,
        needs_extra("ledger", "crossmargin replay"),
        needs_extra("ledger", "crossmargin.ledger"),
    ):
        import_module("absent_optional_package")
    assert str(same.value) == (
        "crossmargin replay needs the ledger extra: pip install 'crossmargin[ledger]'"
    )
    assert same.value.module == "absent_optional_package"
    with (
        pytest.raises(MissingExtraError) as other,
        needs_extra("ledger", "crossmargin replay"),
        needs_extra("plots", "heat maps"),
    ):
        import_module("absent_optional_package")
    assert str(other.value) == "heat maps needs the plots extra: pip install 'crossmargin[plots]'"


def test_the_ledger_api_without_sqlalchemy_raises_one_error_naming_the_extra() -> None:
    done = _python(
        ("sqlalchemy",),
        "from crossmargin.model import CrossMarginError\n"
        "try:\n"
        "    from crossmargin.ledger import Ledger\n"
        "except CrossMarginError as error:\n"
        "    print(type(error).__name__, error)\n",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        "MissingExtraError crossmargin.ledger needs the ledger extra: "
        "pip install 'crossmargin[ledger]'\n"
    )


def test_core_packages_and_commands_work_without_any_extra() -> None:
    """The core install (numpy, scipy, numba, typer, rich) imports every face, and the demo
    prints exactly what it prints with every extra installed."""
    blocked = LEDGER + DISTRIBUTED + PLOTS
    imported = _python(
        blocked,
        "import crossmargin, crossmargin.app, crossmargin.book, crossmargin.cli, crossmargin.lab\n"
        "print('ok')\n",
    )
    assert (imported.returncode, imported.stdout) == (0, "ok\n"), imported.stderr
    core, full = _cli(blocked, "demo"), _cli((), "demo")
    assert (core.returncode, full.returncode) == (0, 0), core.stderr + full.stderr
    assert "crossmargin margin demo-" in core.stdout
    assert core.stdout == full.stdout


@pytest.mark.parametrize(
    ("blocked", "args", "message"),
    [
        (
            ("sqlalchemy",),
            ("replay", "--accounts", "5"),
            "crossmargin replay needs the ledger extra: pip install 'crossmargin[ledger]'",
        ),
        (
            DISTRIBUTED,
            ("stress", "--synthetic", "20"),
            "crossmargin stress needs the distributed extra: "
            "pip install 'crossmargin[distributed]'",
        ),
        (
            PLOTS,
            ("scenarios", "--leg=-1:call:110000:30:0.5", "--png", "{png}"),
            "crossmargin scenarios --png needs the plots extra: pip install 'crossmargin[plots]'",
        ),
    ],
)
def test_a_command_without_its_extra_exits_2_with_one_line(
    blocked: tuple[str, ...], args: tuple[str, ...], message: str, tmp_path: Path
) -> None:
    png = tmp_path / "heat.png"
    done = _cli(blocked, *(a.format(png=png) for a in args))
    assert done.returncode == 2, done.stderr
    assert done.stderr == f"error: {message}\n"
    assert not png.exists()
