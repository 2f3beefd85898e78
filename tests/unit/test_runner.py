import os
import signal
import subprocess
import sys

import pytest

from denet.errors import SpawnError
from denet.runner import Reaper, exit_code_of, spawn


def _status(code=None, sig=None):
    # build real wait statuses from real processes
    if sig is not None:
        p = subprocess.Popen(["sleep", "5"])
        p.send_signal(sig)
    else:
        p = subprocess.Popen(["sh", "-c", f"exit {code}"])
    _, st = os.waitpid(p.pid, 0)
    p.returncode = 0  # already reaped
    return st


def test_exit_code_of():
    assert exit_code_of(_status(0)) == 0
    assert exit_code_of(_status(3)) == 3
    assert exit_code_of(_status(sig=signal.SIGTERM)) == 128 + signal.SIGTERM
    assert exit_code_of(_status(sig=signal.SIGKILL)) == 137


def test_spawn_errors(tmp_path):
    with pytest.raises(SpawnError) as e:
        spawn(["denet-no-such-command-xyz"])
    assert e.value.exit_code == 127 and "denet-no-such-command-xyz" in str(e.value)
    f = tmp_path / "script.sh"
    f.write_text("#!/bin/sh\necho hi\n")
    with pytest.raises(SpawnError) as e:
        spawn([str(f)])
    assert e.value.exit_code == 126
    with pytest.raises(SpawnError) as e:
        spawn([str(tmp_path)])
    assert e.value.exit_code == 126


def test_reaper_for_the_root_only_leaves_other_children_alone():
    other = subprocess.Popen(["sh", "-c", "exit 4"])
    child = spawn(["sh", "-c", "exit 5"], stdout="null")
    r = Reaper(child.pid, reap_all=False)
    r.reap(block=True)
    assert exit_code_of(r.root_status) == 5
    assert other.wait() == 4  # not stolen by the reaper
    child.close()


def test_sigpipe_is_default_again_in_cmd():
    """Python ignores SIGPIPE; CMD must not inherit that (`yes | head` would print errors)."""
    p = subprocess.run([sys.executable, "-m", "denet", "run", "--", "sh", "-c", "yes | head -n 1"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0
    assert p.stdout == "y\n"
    assert "Broken pipe" not in p.stderr


def test_subreaper_collects_orphans_cpu(tmp_path):
    """An orphaned grandchild is reparented to denet; its CPU lands in the exact total."""
    burn = "import time\nt=time.process_time()\nwhile time.process_time()-t<0.4: pass"
    script = f"{sys.executable} -c '{burn}' & exit 0"
    stats = tmp_path / "s.json"
    # sh exits at once; denet returns when sh ends, the grandchild still running is counted so far
    p = subprocess.run([sys.executable, "-m", "denet", "--stats", str(stats), "run", "--", "sh", "-c",
                        script + "; sleep 0"], timeout=30)
    assert p.returncode == 0
    script2 = f"( {sys.executable} -c '{burn}' & ) ; sleep 1"
    p = subprocess.run([sys.executable, "-m", "denet", "--stats", str(stats), "run", "--", "sh", "-c", script2],
                       timeout=30)
    assert p.returncode == 0
    import json

    s = json.loads(stats.read_text())
    # the grandchild (double-forked, so orphaned at once) ended while sh slept: reaped by denet
    assert s["cpu_time_secs"] >= 0.38
