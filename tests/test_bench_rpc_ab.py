"""The make_order A/B against an earlier commit (benchmarks/bench_rpc_ab.py): base tree, import check, pairing, verdict.

The base tree is written out of real git repositories (a throwaway one, and this checkout when
it is one), and the import check is run against a real server and its journal helper.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from benchmarks.bench_rpc import child_pids
from benchmarks.bench_rpc_ab import (
    ROOT,
    BaseUnavailable,
    check_own_tree,
    coinwire_source,
    materialise,
    pair_order,
    run,
    side_env,
    summarise,
)
from tests.server import ServerProcess

_IN_GIT_CHECKOUT = (ROOT / ".git").exists()


def _git(repo: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env=env)


def _repo_with_two_commits(repo: Path) -> None:
    package = repo / "src" / "coinwire"
    package.mkdir(parents=True)
    _git(repo, "init", "-q")
    (package / "__init__.py").write_text('"""first"""\n')
    (repo / "README.md").write_text("outside src\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "first")
    _git(repo, "tag", "first")
    (package / "__init__.py").write_text('"""second"""\n')
    (package / "added.py").write_text("")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "second")


def test_materialise_writes_the_refs_src_only(tmp_path: Path) -> None:
    repo, out = tmp_path / "repo", tmp_path / "out"
    _repo_with_two_commits(repo)
    commit = materialise(repo, "first", out)
    assert len(commit) == 40
    assert (out / "src" / "coinwire" / "__init__.py").read_text() == '"""first"""\n'
    assert not (out / "src" / "coinwire" / "added.py").exists()  # a later commit's file
    assert not (out / "README.md").exists()  # only src
    assert (repo / "src" / "coinwire" / "__init__.py").read_text() == '"""second"""\n'  # the checkout is untouched


def test_materialise_refuses_a_folder_that_is_not_a_checkout(tmp_path: Path) -> None:
    with pytest.raises(BaseUnavailable, match="not a git checkout"):
        materialise(tmp_path, "HEAD", tmp_path / "out")


def test_materialise_refuses_a_folder_inside_another_checkout(tmp_path: Path) -> None:
    """An sdist unpacked inside some repository must not take that repository's history for its own."""
    repo = tmp_path / "repo"
    _repo_with_two_commits(repo)
    sdist = repo / "unpacked"
    (sdist / "src" / "coinwire").mkdir(parents=True)
    with pytest.raises(BaseUnavailable, match="lies inside"):
        materialise(sdist, "first", tmp_path / "out")


def test_materialise_refuses_an_unknown_ref(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _repo_with_two_commits(repo)
    with pytest.raises(BaseUnavailable, match="'no-such-ref' is not a commit"):
        materialise(repo, "no-such-ref", tmp_path / "out")


def test_run_outside_a_checkout_is_skipped_with_the_reason(tmp_path: Path) -> None:
    result = run(root=tmp_path, base="2e93ff2")
    assert result == {"base": "2e93ff2", "skipped": result["skipped"]}
    assert "not a git checkout" in result["skipped"]


def test_run_takes_the_base_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    _repo_with_two_commits(repo)
    monkeypatch.setenv("COINWIRE_BENCH_BASE", "no-such-ref")
    result = run(root=repo)
    assert result["base"] == "no-such-ref"
    assert "'no-such-ref' is not a commit" in result["skipped"]


def test_pairs_alternate_which_side_runs_first() -> None:
    assert pair_order(4) == [("base", "current"), ("current", "base"), ("base", "current"), ("current", "base")]


def _round(orders_per_s: float, cpu_us: float) -> dict[str, Any]:
    return {"orders_per_s": orders_per_s, "server_cpu_us_per_order": cpu_us, "p99_ms": 2.0, "client_cpu_us_per_order": 30.0}


def test_summary_is_the_median_of_the_paired_ratios() -> None:
    rounds = [
        {"base": _round(8000, 100), "current": _round(7600, 105)},  # 0.95
        {"base": _round(6000, 130), "current": _round(6600, 120)},  # 1.10: the host moved between pairs
        {"base": _round(7000, 110), "current": _round(5950, 130)},  # 0.85
    ]
    out = summarise(rounds)
    assert out["base_orders_per_s"] == 7000 and out["current_orders_per_s"] == 6600
    assert out["paired_ratios"] == [0.95, 1.1, 0.85]
    assert out["current_over_base"] == 0.95 and out["current_over_base_pct"] == 95.0
    assert (out["paired_ratio_min"], out["paired_ratio_max"]) == (0.85, 1.1)
    assert out["within_10pct"] is True and out["pairs_within_10pct"] == "2/3"
    assert out["server_cpu_current_over_base"] == 1.05
    assert out["base_orders_per_s_rounds"] == [8000, 6000, 7000]


def test_summary_fails_a_current_side_more_than_10pct_slower() -> None:
    rounds = [{"base": _round(8000, 100), "current": _round(7100, 112)},
              {"base": _round(6000, 130), "current": _round(5300, 147)}]
    out = summarise(rounds)
    assert out["current_over_base"] == pytest.approx(0.885, abs=0.001)
    assert out["within_10pct"] is False and out["pairs_within_10pct"] == "0/2"


@pytest.mark.skipif(not _IN_GIT_CHECKOUT, reason="needs this project's git history")
def test_a_server_started_on_another_tree_imports_that_tree_only(tmp_path: Path) -> None:
    """The server and its journal helper resolve `coinwire` to the written-out tree, not the venv's editable install."""
    other = tmp_path / "base"
    materialise(ROOT, "HEAD", other)
    (tmp_path / "data").mkdir()
    server = ServerProcess(tmp_path / "data", env=side_env(other / "src"))
    server.start()
    try:
        pid = server.proc.pid if server.proc else 0
        helpers = child_pids(pid)
        assert helpers  # the store's journal helper
        for each in (pid, *helpers):
            assert coinwire_source(each) == (other / "src" / "coinwire").resolve()
        check_own_tree(other / "src")(pid)
        with pytest.raises(RuntimeError, match="imports coinwire from"):
            check_own_tree(ROOT / "src")(pid)
    finally:
        server.stop()


@pytest.mark.slow
@pytest.mark.skipif(not _IN_GIT_CHECKOUT, reason="needs this project's git history")
def test_a_short_ab_run_measures_both_sides_in_alternating_pairs() -> None:
    result = run(seconds=0.5, pairs=2, base="HEAD", count_instructions=False)
    assert "skipped" not in result
    assert result["order"] == "base,current; current,base"
    assert len(result["paired_ratios"]) == 2
    assert all(n > 0 for n in result["base_orders_per_s_rounds"] + result["current_orders_per_s_rounds"])
    assert result["current_over_base"] > 0
