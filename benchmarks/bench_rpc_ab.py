"""make_order over /rpc, this checkout's source against an earlier commit's, in paired rounds of one run.

A change's cost on the order path is read against the code before it, on the same host in the
same minutes: this host's speed moves by ±40% within an hour, so figures from two runs say
little, and only rounds interleaved in one run compare. The base commit's `src` is written to a
temporary folder (`git archive`), and benchmarks/bench_rpc.py's load (8 clients, the same
order mix, the same 1 s warm-up) runs against a fresh server of each side in turn, in pairs
whose order alternates (base, current; current, base; ...), so that a host slowing down
through the run does not favour one side. Each pair gives a ratio current/base; the median of
those ratios is the figure, their spread the noise, and within 10% means the median is at
least 0.90 (a faster current side passes).

Each side runs on its own code only: its server (and the server's journal helper) gets
PYTHONPATH = that side's `src`, ahead of the venv's editable install (a `.pth` entry at the
end of sys.path), and PYTHONSAFEPATH, so the working directory is not put ahead of it; after
every round the interpreter resolves `import coinwire` in the server's own environment and
working directory (read from /proc) and the round fails unless it is that side's tree. Both
sides start with an empty data folder, so each creates its own schema, on the same store kind
(SQLite through its journal). Callgrind's count of the server's instructions an order
(bench_rpc.instructions_per_order), which the host does not move, is the second figure; the
journal helper's count is listed but moved between counts of the same code (31k-155k): it runs
at niceness +10, and how much of the orders' changes it has applied when counting stops depends
on what else the host runs.

`COINWIRE_BENCH_BASE` names the base (default 6bed7c9, the commit before the conditional orders work).
Outside a git checkout (an sdist), or when the ref is not in it, the result only says why it
was skipped. `python -m benchmarks.bench_rpc_ab [pairs] [seconds]` runs it alone.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.bench_rpc import child_pids, instructions_per_order, serve_and_measure

ROOT = Path(__file__).resolve().parent.parent
BASE_ENV = "COINWIRE_BENCH_BASE"
DEFAULT_BASE = "6bed7c9"  # the commit before conditional orders (issue 24); ff79a03 for issue 23's figures, 0b96280 for issue 22's
PAIRS = 6  # 12 fresh servers (~9.5 s each); with the two callgrind counts (~25 s each) about 3 minutes
SECONDS = 4.0  # of load per round, after bench_rpc's 1 s warm-up: 20,000-40,000 orders
TOLERANCE = 0.10  # current/base >= 0.90 passes
SIDES = ("base", "current")


class BaseUnavailable(Exception):
    """The base commit's source cannot be written out here (no git checkout, unknown ref, no git or tar)."""


def materialise(root: Path, ref: str, into: Path, folders: tuple[str, ...] = ("src",)) -> str:
    """Write `ref`'s `src` folder (and any other `folders`) under `into` (`into/src`); returns the full commit id.

    Only a git checkout whose top level is `root` counts: an sdist unpacked inside some other
    repository must not take that repository's history for its own.
    """
    try:
        top = _git(root, "rev-parse", "--show-toplevel").decode().strip()
    except BaseUnavailable as e:
        raise BaseUnavailable(f"{root} is not a git checkout ({e})") from None
    if Path(top).resolve() != root.resolve():
        raise BaseUnavailable(f"{root} is not a git checkout (it lies inside {top})")
    try:
        commit = _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").decode().strip()
    except BaseUnavailable:
        raise BaseUnavailable(f"{ref!r} is not a commit of this checkout (a shallow clone?)") from None
    archive = _git(root, "archive", "--format=tar", commit, *folders)
    into.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as e:
        raise BaseUnavailable(f"cannot unpack {ref}'s src with tar: {e}") from None
    if not (into / "src" / "coinwire" / "__init__.py").is_file():
        raise BaseUnavailable(f"{ref} has no src/coinwire")
    return commit


def _git(root: Path, *args: str) -> bytes:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)
    except FileNotFoundError:
        raise BaseUnavailable("git is not installed") from None
    except subprocess.CalledProcessError as e:
        raise BaseUnavailable(e.stderr.decode(errors="replace").strip() or f"git {args[0]} failed") from None
    return done.stdout


def side_env(src: Path) -> dict[str, str]:
    """The environment a side's server is started with: its `src` first on sys.path, the same store kind."""
    return {"PYTHONPATH": str(src), "PYTHONSAFEPATH": "1", "COINWIRE_STORE_JOURNAL": "true"}


def compile_side(src: Path) -> None:
    """Compile a side's modules into their `__pycache__` folders (git-ignored) before its first server starts.

    Where PYTHONDONTWRITEBYTECODE is set, a server would otherwise compile every module at each
    start: ~20 s more a start under callgrind. Compiled files are only a cache (checked against
    the source's mtime), so the rounds run the same code either way.
    """
    subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", "-x", "/node_modules/", str(src / "coinwire")],
                   check=True, capture_output=True)


def coinwire_source(pid: int) -> Path:
    """The `coinwire` package a running process imports: resolved by this interpreter in its environment and folder.

    The server runs `sys.executable -m coinwire.cli serve`, so the same interpreter given the
    process's own environment (PYTHONPATH, PYTHONSAFEPATH) and working directory finds the same
    package on the same sys.path.
    """
    proc = Path(f"/proc/{pid}")
    env = dict(item.split("=", 1) for item in proc.joinpath("environ").read_text().split("\0") if "=" in item)
    found = subprocess.run(
        [sys.executable, "-c", "import coinwire; print(coinwire.__file__)"],
        env=env, cwd=os.readlink(proc / "cwd"), check=True, capture_output=True, text=True,
    )
    return Path(found.stdout.strip()).resolve().parent


def check_own_tree(src: Path) -> Callable[[int], None]:
    """A check that a server and its journal helper import `coinwire` from `src` and nowhere else."""
    expected = (src / "coinwire").resolve()

    def check(pid: int) -> None:
        for each in (pid, *child_pids(pid)):
            found = coinwire_source(each)
            if found != expected:
                raise RuntimeError(f"process {each} imports coinwire from {found}, not {expected}")

    return check


def pair_order(pairs: int) -> list[tuple[str, str]]:
    """Which side runs first in each pair: base first, then current first, alternating (A B B A A B ...)."""
    return [SIDES if n % 2 == 0 else SIDES[::-1] for n in range(pairs)]


def summarise(rounds: list[dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """Per-side medians, the paired ratios current/base and the verdict, from each pair's two rounds."""
    speed = [r["current"]["orders_per_s"] / r["base"]["orders_per_s"] for r in rounds]
    cpu = [r["current"]["server_cpu_us_per_order"] / r["base"]["server_cpu_us_per_order"] for r in rounds]
    ratio = statistics.median(speed)
    out: dict[str, Any] = {}
    for side in SIDES:
        out[f"{side}_orders_per_s"] = statistics.median(r[side]["orders_per_s"] for r in rounds)
    out["current_over_base"] = round(ratio, 3)
    out["current_over_base_pct"] = round(ratio * 100, 1)
    out["paired_ratios"] = [round(s, 3) for s in speed]
    out["paired_ratio_min"], out["paired_ratio_max"] = round(min(speed), 3), round(max(speed), 3)
    out["within_10pct"] = ratio >= 1 - TOLERANCE
    out["pairs_within_10pct"] = f"{sum(s >= 1 - TOLERANCE for s in speed)}/{len(speed)}"
    for side in SIDES:
        out[f"{side}_orders_per_s_rounds"] = [round(r[side]["orders_per_s"]) for r in rounds]
    for side in SIDES:
        out[f"{side}_server_cpu_us_per_order"] = statistics.median(r[side]["server_cpu_us_per_order"] for r in rounds)
    out["server_cpu_current_over_base"] = round(statistics.median(cpu), 3)  # above 1: current costs more CPU an order
    for side in SIDES:
        out[f"{side}_p99_ms"] = statistics.median(r[side]["p99_ms"] for r in rounds)
    for side in SIDES:
        out[f"{side}_client_cpu_us_per_order"] = statistics.median(r[side]["client_cpu_us_per_order"] for r in rounds)
    return out


def _current_label(root: Path) -> str:
    head = _git(root, "rev-parse", "--short=10", "HEAD").decode().strip()
    dirty = _git(root, "status", "--porcelain", "--", "src").strip()
    return f"{root / 'src'} at {head}" + (" with uncommitted changes" if dirty else "")


def run(
    seconds: float = SECONDS, pairs: int = PAIRS, base: str | None = None, root: Path = ROOT,
    count_instructions: bool = True,
) -> dict[str, Any]:
    """The A/B: `pairs` pairs of rounds, then each side's callgrind count; skipped when the base cannot be written out."""
    ref = base or os.environ.get(BASE_ENV) or DEFAULT_BASE
    with tempfile.TemporaryDirectory(prefix="coinwire-base-") as tmp:
        try:
            commit = materialise(root, ref, Path(tmp))
            current = _current_label(root)
        except BaseUnavailable as e:
            return {"base": ref, "skipped": f"base not available: {e}"}
        srcs = {"base": Path(tmp) / "src", "current": root / "src"}
        envs = {side: side_env(srcs[side]) for side in SIDES}
        for side in SIDES:
            compile_side(srcs[side])
        rounds: list[dict[str, dict[str, Any]]] = []
        started = time.perf_counter()
        for first, second in pair_order(pairs):
            pair = {}
            for side in (first, second):
                pair[side] = serve_and_measure(seconds, env=envs[side], check=check_own_tree(srcs[side]))
            rounds.append(pair)
        result: dict[str, Any] = {
            "base": f"{ref} ({commit[:10]})",
            "current": current,
            "store": "sqlite (WAL) through its journal, a fresh data folder per round",
            "pairs": pairs,
            "round_seconds": seconds,
            "order": "; ".join(",".join(p) for p in pair_order(pairs)),  # no "|": the value goes in a Markdown table
            "imports_checked": "each round's server and journal helper import coinwire from their side's src",
        }
        result.update(summarise(rounds))
        result["rounds_s"] = round(time.perf_counter() - started, 1)
        if count_instructions:
            for side in SIDES:
                counted = instructions_per_order(env=envs[side])
                result.update({f"{side}_{key}": value for key, value in counted.items()})
            if "base_server_instructions_per_order" in result:  # the journal helper's count moves with its batches
                result["server_instructions_current_over_base"] = round(
                    result["current_server_instructions_per_order"] / result["base_server_instructions_per_order"], 3)
    return result


if __name__ == "__main__":
    args = sys.argv[1:]
    print(run(pairs=int(args[0]) if args else PAIRS, seconds=float(args[1]) if len(args) > 1 else SECONDS))
