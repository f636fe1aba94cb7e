"""The matching core and SMA backtest A/B (benchmarks/bench_core_ab.py): ratios read the right way round, both trees."""

from __future__ import annotations

import subprocess
from pathlib import Path

from benchmarks.bench_core_ab import _summary
from benchmarks.bench_rpc_ab import materialise


def test_speed_ratios_read_faster_as_higher_for_rates_and_for_times() -> None:
    rates = _summary("m", [{"base": 100.0, "current": 110.0}, {"base": 100.0, "current": 80.0}, {"base": 100, "current": 95}],
                     "events_per_s", higher_is_faster=True)
    assert rates["m_paired_ratios"] == [1.1, 0.8, 0.95]
    assert rates["m_current_over_base_pct"] == 95.0 and rates["m_within_10pct"]
    times = _summary("b", [{"base": 1.0, "current": 2.0}], "seconds", higher_is_faster=False)
    assert times["b_current_over_base_pct"] == 50.0 and not times["b_within_10pct"]  # twice the time: half the speed


def test_both_src_and_benchmarks_are_written_out(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "src" / "coinwire").mkdir(parents=True)
    (repo / "benchmarks").mkdir()
    (repo / "src" / "coinwire" / "__init__.py").write_text("")
    (repo / "benchmarks" / "bench_matching.py").write_text("print({'events_per_s': 1})\n")
    for cmd in (["init", "-q"], ["add", "."], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"]):
        subprocess.run(["git", "-C", str(repo), *cmd], check=True)
    into = tmp_path / "out"
    materialise(repo, "HEAD", into, folders=("src", "benchmarks"))
    assert (into / "benchmarks" / "bench_matching.py").is_file() and (into / "src" / "coinwire" / "__init__.py").is_file()
