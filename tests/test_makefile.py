"""The Makefile's install step, as `make run` and `make test` started together on a fresh clone use it."""

from __future__ import annotations

import subprocess
from pathlib import Path

from helpers.stack import REPO

# Stands in for python3.11: `-m venv DIR` makes DIR/bin/pip, a pip that logs its runs and takes a while.
FAKE_PYTHON = """#!/bin/sh
mkdir -p "$3/bin"
cat > "$3/bin/pip" <<'PIP'
#!/bin/sh
echo "start $$" >> "$(dirname "$0")/../pip.log"
sleep 0.5
echo "end $$" >> "$(dirname "$0")/../pip.log"
PIP
chmod +x "$3/bin/pip"
printf '#!/bin/sh\nexit 0\n' > "$3/bin/python"
chmod +x "$3/bin/python"
"""


def test_two_installs_started_together_run_one_after_the_other_and_install_once(tmp_path):
    python = tmp_path / "python"
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    venv = tmp_path / "venv"
    command = ["make", "--no-print-directory", "-C", str(REPO), "install", f"PYTHON={python}", f"VENV={venv}"]
    makes = [subprocess.Popen(command) for _ in range(2)]
    assert [m.wait(60) for m in makes] == [0, 0]
    log = (venv / "pip.log").read_text().split()
    events = log[::2]
    assert events == ["start", "end", "start", "end"]  # pip upgrade, then the install: never interleaved
    assert (Path(venv) / ".installed").exists()
