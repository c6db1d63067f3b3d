"""`./run demo` stops everything it started on SIGTERM, SIGHUP, Ctrl-C and a normal exit.

The demo's own process management (``ProcessGroups``) runs in a real subprocess and starts a cheap stand-in for
``airflow standalone``: a server holding a port, which starts a grandchild in its group (a scheduler) and one that
moved to a session of its own (a worker that called setsid). The test signals the demo process the way a supervisor,
``timeout`` or a closed terminal would, then checks that no process of the tree is left and the port is free.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent("""
    import subprocess, sys, time
    port, pids = sys.argv[1], sys.argv[2]
    server = subprocess.Popen([sys.executable, "-m", "http.server", port, "--bind", "127.0.0.1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    with open(pids, "w") as fh:
        fh.write(f"{server.pid} {worker.pid}")
    time.sleep(600)
""")

DEMO = textwrap.dedent("""
    import sys, time
    from airflow_agentic.flywheel.demo import ProcessGroups
    port, pids, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    with ProcessGroups() as groups:
        groups.start([sys.executable, "-c", sys.argv[4], port, pids])
        groups.start([sys.executable, "-c", "import time; time.sleep(600)"])  # a second server (MLflow)
        import os, socket
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (os.path.exists(pids) and open(pids).read()
                                                   and socket.socket().connect_ex(("127.0.0.1", int(port))) == 0):
            time.sleep(0.05)
        print("started", flush=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and mode == "wait":
            time.sleep(0.1)
        if mode == "crash":
            raise RuntimeError("the demo failed")
""")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def start_demo(tmp_path: Path, mode: str) -> tuple[subprocess.Popen, int, list[int]]:
    port, pids = free_port(), tmp_path / "pids"
    demo = subprocess.Popen([sys.executable, "-c", DEMO, str(port), str(pids), mode, CHILD], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 30
    tree: set[int] = set()
    while time.monotonic() < deadline and demo.poll() is None and not (pids.exists() and pids.read_text()
                                                                       and not port_free(port)):
        tree.update(p.pid for p in psutil.Process(demo.pid).children(recursive=True))
        time.sleep(0.05)
    if demo.poll() is None:
        tree.update(p.pid for p in psutil.Process(demo.pid).children(recursive=True))
    assert pids.exists(), demo.stdout.read()
    return demo, port, sorted(tree | {int(x) for x in pids.read_text().split()})


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_stops_every_child(tmp_path: Path, sig: signal.Signals):
    demo, port, tree = start_demo(tmp_path, "wait")
    assert len(set(tree)) == 4 and not port_free(port)  # 2 servers, the port holder, the setsid worker
    started = time.monotonic()
    demo.send_signal(sig)
    demo.wait(30)
    output = demo.stdout.read()
    assert time.monotonic() - started < 15, output
    assert not [pid for pid in tree if alive(pid)], output
    assert port_free(port)
    if sig == signal.SIGINT:  # Ctrl-C: a KeyboardInterrupt through the demo's own clean-up
        assert demo.returncode != 0
    else:
        assert demo.returncode == 128 + sig, output
        assert signal.Signals(sig).name in output


@pytest.mark.parametrize("mode", ["return", "crash"])
def test_leaving_the_demo_any_other_way_stops_every_child(tmp_path: Path, mode: str):
    demo, port, tree = start_demo(tmp_path, mode)
    demo.wait(30)
    assert not [pid for pid in tree if alive(pid)]
    assert port_free(port)


def test_sigterm_stops_the_real_demo_stack(tmp_path: Path):
    """The demo itself: SIGTERM once MLflow and airflow standalone's components run (a supervisor stopping it
    mid-start); then no process of the tree is left and both ports are free."""
    airflow_port, mlflow_port = free_port(), free_port()
    demo = subprocess.Popen([str(Path(sys.executable).parent / "airflow-agentic"), "demo", "--port", str(airflow_port),
                             "--mlflow-port", str(mlflow_port), "--root", str(tmp_path / "demo")], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tree: dict[int, str] = {}
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and demo.poll() is None:
            for proc in psutil.Process(demo.pid).children(recursive=True):
                try:
                    tree[proc.pid] = " ".join(proc.cmdline()[1:3])
                except psutil.Error:
                    pass
            if any("scheduler" in c for c in tree.values()) and any("mlflow" in c for c in tree.values()):
                break
            time.sleep(0.5)
        assert demo.poll() is None, demo.stdout.read()
        assert any("scheduler" in c for c in tree.values()), tree
        demo.send_signal(signal.SIGTERM)
        demo.wait(60)
    finally:
        if demo.poll() is None:
            demo.kill()
    output = demo.stdout.read()
    assert demo.returncode == 128 + signal.SIGTERM, output
    time.sleep(0.5)
    assert not {pid: cmd for pid, cmd in tree.items() if alive(pid)}, output
    assert port_free(airflow_port) and port_free(mlflow_port)
