"""dagfleet_runtime.tee: step output is captured to the file and still mirrored to the
process's own stream, with no helper process; each scenario runs in a fresh Python
process whose real stdout and stderr the test reads."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.fleetproc import wait_for

pytestmark = pytest.mark.integration


def run(script: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    code = "import os, subprocess, sys\nfrom dagfleet_runtime.tee import mirror_to_file\n"
    code += textwrap.dedent(script)
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def test_python_os_and_child_output_reach_the_file_and_the_stream(tmp_path: Path) -> None:
    done = run(
        """
        out, err = "logs/step.out", "logs/step.err"
        with mirror_to_file(sys.stdout, out), mirror_to_file(sys.stderr, err):
            print("from python")
            os.write(1, b"from the descriptor\\n")
            subprocess.run(["sh", "-c", "echo from a child; echo child err >&2"], check=True)
            print("to stderr", file=sys.stderr)
        print("after the capture")
        """,
        tmp_path,
    )
    captured = (tmp_path / "logs" / "step.out").read_text()
    assert captured == "from python\nfrom the descriptor\nfrom a child\n"
    assert (tmp_path / "logs" / "step.err").read_text() == "child err\nto stderr\n"
    assert done.stdout == captured + "after the capture\n", "mirrored, then restored"
    assert done.stderr == "child err\nto stderr\n"


def test_no_helper_process_and_the_file_exists_before_any_output(tmp_path: Path) -> None:
    done = run(
        """
        import psutil
        with mirror_to_file(sys.stdout, "step.out"), mirror_to_file(sys.stderr, "step.err"):
            assert os.path.exists("step.out") and os.path.exists("step.err")
            children = psutil.Process().children(recursive=True)
        print(len(children), file=sys.stderr)
        """,
        tmp_path,
    )
    assert done.stderr.strip() == "0"
    assert (tmp_path / "step.out").read_text() == ""


def test_appends_to_an_earlier_capture(tmp_path: Path) -> None:
    (tmp_path / "step.out").write_text("first attempt\n")
    run('with mirror_to_file(sys.stdout, "step.out"):\n    print("retry")\n', tmp_path)
    assert (tmp_path / "step.out").read_text() == "first attempt\nretry\n"


def test_a_child_that_outlives_the_step_does_not_hold_it(tmp_path: Path) -> None:
    done = run(
        """
        import time
        with mirror_to_file(sys.stdout, "step.out"):
            child = subprocess.Popen(["sh", "-c", "echo early; sleep 4; echo late"])
            time.sleep(0.5)
        print(child.poll() is None, file=sys.stderr)  # still running when the block ended
        child.wait()
        """,
        tmp_path,
    )
    assert done.stderr.strip() == "True"
    out = tmp_path / "step.out"
    wait_for(lambda: "late" in out.read_text(), 30, "the lingering child's output in the file")
    assert (tmp_path / "step.out").read_text() == "early\nlate\n"


def test_a_stream_without_a_descriptor_is_left_alone(tmp_path: Path) -> None:
    done = run(
        """
        import io
        fake = io.StringIO()
        with mirror_to_file(fake, "step.out"):
            fake.write("kept in the stand-in")
        print(fake.getvalue())
        """,
        tmp_path,
    )
    assert done.stdout == "kept in the stand-in\n"
    assert (tmp_path / "step.out").read_text() == ""
