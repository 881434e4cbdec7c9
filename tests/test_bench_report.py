"""bench/README.md's figures table is the one the results files generate."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_readme_table_is_generated_from_the_results_files():
    out = subprocess.run([sys.executable, "bench/report.py", "--check"], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_results_file_records_its_command_commit_machine_and_load():
    files = sorted((ROOT / "bench" / "results").glob("*.json"))
    assert files
    for path in files:
        data = json.loads(path.read_text())
        assert data["figures"], path
        assert "command" in data and "machine" in data, path
        if data["reproduced"]:
            assert data["git"]["commit"] and data["load_start"] and data["wall_s"] > 0, path
        else:  # carried over from an earlier round: says so, with its date and source
            assert data["measured"] and data["source"], path
