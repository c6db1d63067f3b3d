"""MLflow's chatter in task logs and the demo: the "🏃 View run … / 🧪 View experiment …" lines it writes to stdout
at the end of every run on a tracking server, and a tqdm progress bar per artifact download. Both are switched by
environment variables that MLflow reads at each call; these tests pin that down on the installed MLflow and a real
server, so the provider's setting (QUIET_MLFLOW, applied where it configures MLflow) keeps working on upgrades."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration

QUIET_MLFLOW = {"MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}


def _run_and_download(uri: str, tmp_path) -> None:
    import mlflow

    (tmp_path / "a.txt").write_text("x" * 1000)
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("quiet-logs")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(tmp_path / "a.txt"))
    mlflow.artifacts.download_artifacts(run_id=run.info.run_id, dst_path=str(tmp_path / "out"))


@pytest.mark.parametrize("quiet", [False, True])
def test_view_run_lines_and_progress_bars_follow_the_environment(mlflow_server, tmp_path, monkeypatch, capfd,
                                                                  quiet):
    for key, value in QUIET_MLFLOW.items():
        if quiet:
            monkeypatch.setenv(key, value)
        else:
            monkeypatch.delenv(key, raising=False)
    _run_and_download(mlflow_server.url, tmp_path)
    printed = "".join(capfd.readouterr())
    assert ("View run" in printed) is not quiet and ("View experiment" in printed) is not quiet
    assert ("Downloading artifacts" in printed) is not quiet  # tqdm's bar (stderr)
