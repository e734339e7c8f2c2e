"""The training image's init (``python -m sagemaker_rl.init train``): SIGTERM reaches the training script, not the
toolkit that runs it, and the container exits with the toolkit's exit code.

The toolkit is played by a small script doing what sagemaker-training's ``train`` does: it runs the entry point as
its child, waits for it and exits with its code, with no SIGTERM handler of its own. The Docker stage
(``docker/test_docker.sh``) checks the same in the real image with ``docker kill -s TERM``.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

TOOLKIT = """
import subprocess, sys
sys.exit(subprocess.call(sys.argv[1:]))  # like sagemaker-training: run the entry point, report its exit code
"""

SCRIPT = """
import signal, sys, time
from pathlib import Path
folder = Path(sys.argv[1])
def stop(signum, frame):
    (folder / "signal").write_text(signal.Signals(signum).name)
    sys.exit(7)  # a recognisable exit code: the checkpoint was saved
signal.signal(signal.SIGTERM, stop)
(folder / "ready").write_text("")
time.sleep(60)
"""


def start(tmp_path: Path, *command: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sagemaker_rl.init", *command], stderr=subprocess.PIPE, text=True)


def wait_for(path: Path, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_sigterm_reaches_the_training_script_and_the_toolkit_reports_its_exit(tmp_path: Path) -> None:
    (tmp_path / "toolkit.py").write_text(TOOLKIT)
    (tmp_path / "script.py").write_text(SCRIPT)
    init = start(tmp_path, sys.executable, str(tmp_path / "toolkit.py"), sys.executable, str(tmp_path / "script.py"),
                 str(tmp_path))
    wait_for(tmp_path / "ready")
    init.send_signal(signal.SIGTERM)  # what docker stop, StopTrainingJob and a spot interruption send to PID 1
    _, err = init.communicate(timeout=30)
    assert (tmp_path / "signal").read_text() == "SIGTERM"
    assert init.returncode == 7, err  # the toolkit lived to report the script's exit: it was not signalled
    assert "[sagemaker_rl.init] SIGTERM: forwarded to the training script: " in err
    assert f"{tmp_path / 'script.py'}" in err


def test_a_sigterm_while_the_toolkit_reports_an_ended_script_does_not_kill_the_toolkit(tmp_path: Path) -> None:
    # docker-compose stops a job's other containers as soon as one exits: here, just after this host's script ended
    toolkit = tmp_path / "toolkit.py"
    toolkit.write_text("import subprocess, sys, time\n"
                       "code = subprocess.call([sys.executable, '-c', 'import time; time.sleep(2)'])\n"
                       f"open({str(tmp_path / 'reporting')!r}, 'w').close()\n"
                       "time.sleep(3)  # writing its report\n"
                       "sys.exit(code)\n")
    init = start(tmp_path, sys.executable, str(toolkit))
    wait_for(tmp_path / "reporting")
    init.send_signal(signal.SIGTERM)
    _, err = init.communicate(timeout=30)
    assert init.returncode == 0, err
    assert "SIGTERM: the training script has ended and the toolkit is reporting its exit: not forwarded" in err


def test_a_sigterm_before_the_script_starts_stops_the_toolkit_itself(tmp_path: Path) -> None:
    init = start(tmp_path, sys.executable, "-c", "import time; open(__import__('sys').argv[1], 'w'); time.sleep(60)",
                 str(tmp_path / "ready"))
    wait_for(tmp_path / "ready")
    init.send_signal(signal.SIGTERM)
    init.communicate(timeout=30)
    assert init.returncode == 128 + signal.SIGTERM


def test_the_exit_code_is_the_commands_even_with_orphans_still_running(tmp_path: Path) -> None:
    started = time.monotonic()
    init = start(tmp_path, "sh", "-c", "sleep 30 & exit 3")
    assert init.wait(timeout=10) == 3 and time.monotonic() - started < 10  # (the orphan still holds stderr open)


def test_a_command_that_cannot_run_is_named() -> None:
    init = subprocess.run([sys.executable, "-m", "sagemaker_rl.init", "/no/such/train"], capture_output=True,
                          text=True, timeout=30)
    assert init.returncode == 127 and "cannot run '/no/such/train'" in init.stderr
