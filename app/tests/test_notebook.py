"""The backtest notebook executes headless against a small data root and renders the backtest
and live-evaluation figures from the pipeline's outputs."""

import base64
import json
import sys
from pathlib import Path

import nbformat
import pandas as pd
from ipykernel.kernelspec import write_kernel_spec
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient
from scoring import cli
from scoring.monitoring import report as scoring_report
from scoring.settings import get_settings

NOTEBOOK = (
    Path(__file__).parents[1] / "notebooks" / "backtest" / "1.0-backtest-and-live-evaluation.ipynb"
)


def _isolated_jupyter(tmp_path: Path, monkeypatch) -> None:
    """Jupyter's paths under `tmp_path`, with a python3 kernel that runs this interpreter, so
    no user-level Jupyter install or config takes part."""
    jupyter = tmp_path / "jupyter"
    write_kernel_spec(jupyter / "kernels" / "python3")
    for name, sub in {
        "JUPYTER_PATH": "",
        "JUPYTER_DATA_DIR": "data",
        "JUPYTER_CONFIG_DIR": "config",
        "JUPYTER_RUNTIME_DIR": "runtime",
        "IPYTHONDIR": "ipython",
    }.items():
        monkeypatch.setenv(name, str(jupyter / sub))
    monkeypatch.setenv("MPLBACKEND", "Agg")


def _png_outputs(cell) -> list[bytes]:
    return [
        base64.b64decode(output["data"]["image/png"])
        for output in cell.get("outputs", [])
        if "image/png" in output.get("data", {})
    ]


def test_backtest_notebook_executes_headless(data_root, tmp_path, monkeypatch):
    settings = get_settings()
    assert cli.main(["daily", "--local-scheduler", "--days-back", "5"]) == 0
    assert cli.main(["backtest", "--local-scheduler", "--count", "2", "--step", "1"]) == 0
    # A drift row of a model of another line on the same date: never shown with this line's.
    recorded = pd.read_csv(scoring_report.drift_history_path(settings))
    other = recorded.head(1).assign(model_id="activity-default-00000000-00000000", psi=9.5)
    pd.concat([recorded, other]).to_csv(scoring_report.drift_history_path(settings), index=False)
    _isolated_jupyter(tmp_path, monkeypatch)
    spec = KernelSpecManager().get_kernel_spec("python3")
    assert spec.argv[0] == sys.executable

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert notebook.metadata.kernelspec.name == "python3"
    assert not any(cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")
    # Raises CellExecutionError, with the cell and its traceback, if any cell fails.
    NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()

    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    backtest, live, drift = (_png_outputs(cell) for cell in code[1:4])
    # The backtest figures are the report's own files, in the report's order.
    report = max(settings.reports_dir.glob("backtest-*.md"), key=lambda p: p.stat().st_mtime)
    names = [
        line.split("(figures/")[1].rstrip(")")
        for line in report.read_text().splitlines()
        if line.startswith("![")
    ]
    assert backtest == [(settings.figures_dir / name).read_bytes() for name in names]
    assert len(backtest) == 5
    assert len(live) == 2 and len(drift) == 1  # metrics over time, calibration; PSI bars
    assert all(png.startswith(b"\x89PNG") for png in live + drift)
    shown = json.dumps(code[3].get("outputs", []))
    assert "activity-default-00000000-00000000" not in shown
    mixed = round((float(other["psi"].iloc[0]) + float(recorded["psi"].iloc[0])) / 2, 4)
    assert f"{mixed:.4f}" not in shown and str(mixed) not in shown
