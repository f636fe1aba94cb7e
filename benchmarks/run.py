"""`make bench`: run every benchmark in one process and write the figures to docs/BENCHMARKS.md."""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "BENCHMARKS.md"

# (name, module, headline key, target, unit, what it measures)
BENCHES: list[tuple[str, str, str, float, str, str]] = [
    ("Book replay", "benchmarks.bench_book", "apply_level_updates_per_s", 1_000_000, "level updates/s",
     "BookSync applying every depth diff of the recorded Binance BTCUSDT capture (pre-parsed)"),
    ("Matching core", "benchmarks.bench_matching", "events_per_s", 200_000, "events/s",
     "mixed order events (submits, cancels, marketable orders, deltas, trades) against a 100-level book"),
    ("make_order over /rpc", "benchmarks.bench_rpc", "orders_per_s", 5_000, "orders/s",
     "8 concurrent WebSocket clients, each waiting for the committed answer before the next order"),
    ("make_order A/B against a base commit", "benchmarks.bench_rpc_ab", "current_over_base_pct", 90, "% of the base's orders/s",
     "the same load on this checkout's src and on COINWIRE_BENCH_BASE's (default 6bed7c9), 6 pairs of fresh servers "
     "in alternating order; median of the paired ratios"),
    ("Matching core and SMA backtest A/B against a base commit", "benchmarks.bench_core_ab", "worst_current_over_base_pct", 90,
     "% of the base's speed (the lower of the two)",
     "bench_matching and the SMA backtest's first call, each side on its own commit's src and benchmarks, 5 alternating pairs; "
     "median of the paired ratios"),
    ("History load", "benchmarks.bench_history", "load_candles_per_s", 2_000_000, "candles/s",
     "HistoryStore loading a 1,000,000-bar series (memory-mapped .npy) and reading every column: 0.5 s at target"),
    ("SMA cross backtest, 500k bars", "benchmarks.backtest_sma", "coinwire_speedup_vs_backtesting", 10, "x backtesting.py's speed",
     "ma_cross 50/200 on a seeded 500,000-bar walk, same entries and equity as backtrader, vectorbt, nautilus_trader (docs/PEERS.md)"),
    ("Efficient frontier, 24 assets", "benchmarks.frontier", "pypfopt_over_coinwire", 1, "x PyPortfolioOpt's speed",
     "100-point exact frontier of the 24 hourly pairs vs PyPortfolioOpt efficient_return over the same targets; 1M random portfolios"),
    ("Push isolation", "benchmarks.bench_push", "worst_kept_pct", 80, "% of baseline kept",
     "another client's ticker rate and get_status median beside a client that stopped reading, and one at the pattern limit"),
    ("Candle ingest (SQLite)", "benchmarks.candles", "ingest_sqlite_rows_per_s", 50_000, "rows/s",
     "2,000 series closing together each minute through the batched CandleWriter; also PostgreSQL, 100x1y 1m->1d rollup, 1y daily chart"),
    ("Memory and restart", "benchmarks.bench_memory", "rss_ratio", 1.5, "x the resident memory after 10,000 orders",
     "a gateway's VmRSS after 1,000,000 orders (SQLite, in-process); restart_after_kill_s (< 5 s) is its start on that store "
     "after a SIGKILL; base_* the code before (COINWIRE_BENCH_MEMORY_BASE, default 0b96280) at 200,000"),
    # portfolio tracker (issue 26)
    ("Portfolio capture at a boundary", "benchmarks.bench_portfolio_capture", "capture_sqlite_s", 2.0, "s (SQLite)",
     "100,000 funded accounts of 1,000 users valued at a 15-minute boundary and their candles committed; also PostgreSQL"),
    ("Portfolio tracking on make_order", "benchmarks.bench_portfolio_ab", "tracking_over_off_cpu", 1.10,
     "x the server CPU per order without tracking",
     "bench_rpc's load on servers with COINWIRE_PORTFOLIO_TRACKING on and off, alternating pairs; median of the paired ratios"),
    ("Portfolio chart, a year of 15m to 1d", "benchmarks.bench_portfolio_rollup", "daily_1y_new_york_ms", 50, "ms",
     "GET /api/v1/portfolio/user/{id}/ohlcv?timeframe=1d&tz=America/New_York over 35,040 stored 15-minute candles, "
     "real server; median of 20"),
    # api replicas apart from the gateway (issue 28, docs/SCALING.md "Commands across processes")
    ("make_order through an api replica", "benchmarks.bench_replica", "replica_over_one_pct", 80, "% of one process's orders/s",
     "8 /rpc clients on an api replica forwarding to a gateway process, against one all-in-one process, both on "
     "PostgreSQL + NATS + Redis; median of 2 alternating rounds; p50 and each process's CPU an order beside"),
]
# benchmarks whose figure must stay at or below its target (the others: at or above)
AT_MOST = frozenset({"Memory and restart", "Portfolio capture at a boundary", "Portfolio tracking on make_order",
                     "Portfolio chart, a year of 15m to 1d"})


NOTES = """
## Notes

- This table's run (2026-12-07 19:15 UTC, current = 485a575 with the memory benchmark's fix, alone on
  the host): every target met but the two SMA backtest figures, whose miss is issue 26's uncapped
  portfolio block in the report (see the issue 26 note below; 54% of 6bed7c9's first call, 7x
  backtesting.py). make_order 5,491 orders/s (rounds met the 5,000 target this time); its A/B
  against 6bed7c9 92% with pairs 0.84-1.03 (three pairs near 0.84, three near 1.0: the host), server
  instructions an order 1.11x that base (what issues 24-29 put on the path). The issue 26 rows on
  current code: capture at a boundary 1.39 s SQLite and 1.69 s PostgreSQL (target 2 s), tracking
  on/off 1.05x (pairs 0.92-1.18), a year of 15m to 1d 13.4 ms New York and 13.7 ms Kathmandu (first
  call 104 ms: the 50 ms target holds once the year is in memory). Replica 95% of one process.
  This session's changes against its start (b869bbd), bench_rpc_ab in one run after this table:
  make_order 99.5% (pairs 0.90-1.04), server CPU an order 0.996x, server instructions 0.957x: the
  remote streams, the signals' timestamps and the rules' work are off make_order's path.
- Host speed: the same code moves with the host, between sessions and within one. The matching
  core (pure Python, unchanged for three sessions) gave 412k events/s in one session, 126k-134k
  in the next, 257k in the one after, 272k then 232k in two runs 40 minutes apart in the one
  after that; on Debian's CPython 290-334k, and 483k in the run above (2026-12-06), when the
  host was fast throughout (make_order 9,188 orders/s, rounds 8,842-9,854). Compare figures
  within one run, and the instruction counts of make_order, which the host does not move.
- Issue 20's security fixes (client_oid per owner, run_id labels checked, strict and exact
  request JSON, bounded pushes, credentials that end) against the code before them, same run:
  callgrind counted 442-444k server instructions an order against 437-438k (+1.2%), the
  journal helper 163-170k against 161-164k; 4 paired 10 s rounds of this load, the two
  alternating, read 8,470/8,260, 7,513/8,592, 7,349/7,963 and 6,906/6,474 orders/s (new/old),
  medians 7,431 against 8,111, the pairs spread -13% to +7% with the host: within its noise.
- make_order A/B against a base commit (benchmarks/bench_rpc_ab.py): the make_order load above
  on this checkout's `src` and on an earlier commit's (`COINWIRE_BENCH_BASE`, default `6bed7c9`,
  the commit before the conditional orders work; it was `ff79a03` for the scheduled trading
  work's figures, `0b96280` for the venue contract work's figures and `2e93ff2`, the commit
  before the accounts work, for that issue's; written out with `git archive`), in 6 pairs of 4 s rounds,
  each in a fresh server with its own empty SQLite store (through the journal) and PYTHONPATH on
  its side's `src`; every round checks that the server and its journal helper import that tree
  and not the venv's editable install. The pairs alternate which side runs first (base, current;
  current, base; ...), so a host that slows through the run favours neither. The figure is the
  median of the pairs' current/base ratios (`paired_ratios`, `paired_ratio_min`/`_max` their
  spread); the accounts issue's acceptance is at least 90% (`within_10pct`). `*_server_cpu_us_per_order`
  and callgrind's `*_server_instructions_per_order` (counted once a side: the host does not move
  them) are the second figures; the journal helper's count is listed, not compared (31k-155k
  between counts of the same code: at niceness +10, how much it has applied when counting stops
  depends on the host's load). Outside a git checkout, or when the ref is missing (a shallow
  clone), the section says why and is skipped; the rest of `make bench` runs on.
  `python -m benchmarks.bench_rpc_ab [pairs] [seconds]` runs it alone.
  First runs (2026-12-06, alone, current = main at 2c9310a: the 53 commits since 2e93ff2, before
  any accounts work), on a host that other work kept at a load of 7-8 on its 2 cores: medians of
  the paired ratios 0.954 (pairs 0.83-1.45, 5 s rounds), 1.12 (0.91-1.17, 5 s) and 1.03
  (0.77-2.19, 4 s rounds: one base round read 2,015 orders/s against 4,416 beside it); server
  CPU an order +3%, +3% and +8%; callgrind's server instructions an order 424-430k against
  431-437k (+0.9% to +2.1%, seven counts). Under that load the orders/s ratio moved by ~15%
  between runs and the A/B took 4.2-4.5 minutes (~3 on a quiet host); the instruction counts are
  the steady reading.
- The venue contract work (issue 22) against 0b96280, in the table's run: make_order at 90.0% of
  the base's orders/s (median of the pairs; pairs 0.85-0.955, 7,071 against 7,705), server CPU an
  order +11%, callgrind's server instructions an order 478.7k against 450.1k (+6.4%; two earlier
  counts read 475.5k-479.0k against 448.8k-449.8k). Where it goes: a command now reaches its venue
  through `venue.place` and comes back through `Gateway.record` (+2.9% measured
  for that alone), and the client_oid filter hashes each new key (blake2b, ~3-7 us an order) so
  that no key history is kept in memory; the typed order views gave -2.6%. It is at the edge of
  the 10%: the next place to win it back is the filter's hash.
- Scheduled trading and notifications (issue 23) against ff79a03, in the table's run (current =
  7c57614): make_order at 96.2% of the base's orders/s (median of the pairs; pairs 0.90-1.03,
  7,362 against 7,662), server CPU an order +4.7%, callgrind's server instructions an order
  518.7k against 479.1k (+8.3%). Every order now also reaches the notifier service's bus
  subscription (it reads each order and fill message to find the users who chose an event, and
  builds nothing when none did), and each view formats the Trade shape's `executed_value`,
  `fill_fees` and `funds`. Matching 98.9%, SMA backtest 98.4%: both unchanged within noise.
- Conditional orders and perpetual futures (issues 24 and 25) against 6bed7c9, the commit before
  them, in the table's run (current = b67d570), on a slow hour (matching 328k events/s against
  457k in the previous table): make_order at 96.1% of the base's orders/s (median of the pairs;
  pairs 0.90-1.02, 5,117 against 5,355), server CPU an order +4.6%, callgrind's server
  instructions an order 548.1k against 522.7k (+4.9%). The absolute make_order figure, 4,749
  orders/s, is below its 5,000 in this run while the base read 5,355 in the A/B beside it: the
  host's hour, reported and not chased. Matching 94.3% and the SMA backtest 91.5% of the base
  (pairs 0.89-0.94): both inside the 10%; a profile of the backtest shows no hotspot, 5% more
  calls spread over order submission (order arguments, the perpetual and conditional branches).
  The SMA backtest against backtesting.py read 6.5x (target 10x; 10.3x in the previous table):
  coinwire 0.348 s against 0.26 then, backtesting.py 2.27 s against 2.62, so the host moved the
  two differently and the ~8% above accounts for part of it; the next place to look is
  `engine/backtest.py`'s `submit_order` and `_execute`. A plain order's path pays for the new
  fields (`position_side`, the conditional ones) one check each. Before the fix of SQLite's
  lock-wait thread (store/sqlite_writer.py: a write made while another waited for the lock began
  a second transaction on the one connection), the direct-SQLite round could answer one order
  internal_error; none did in this run (direct SQLite 3,722 orders/s, rounds 3,684-3,807).
- Portfolio tracking (issue 26) and rule sets (issue 27), in the table's run (current = 2f22b44,
  alone on the host after CI; matching read 222k events/s). Capture at a boundary (benchmarks/
  bench_portfolio_capture.py, target 2 s): 101,000 portfolios valued and their candles committed
  in 1.32 s on SQLite (1.54-1.57 s and 1.54-1.83 s on PostgreSQL when measured alone last stop;
  2.81 s in a run beside eight test sessions at load ~10: the valuation of every portfolio each
  pass, ~1.1 s of it, is the part that grows). Tracking on/off, make_order server CPU an order
  (bench_portfolio_ab.py, target <= 1.10): 1.06 (pairs 0.99-1.10). A year of 15m candles to 1d
  through the API (bench_portfolio_rollup.py, target 50 ms): 20.1 ms New York, 20.1 ms Kathmandu,
  first call 120 ms. The SMA backtest's first call is 56% of 6bed7c9's speed in the A/B above
  (0.63 s against 0.35 s): all of it issue 26's uncapped portfolio block in the report (166,667
  candles on the 500,000-bar walk), not issue 27: the same A/B against 64485e2 (issue 26, before
  the rules) gave the SMA backtest 100.3% (pairs 0.97-1.03) and matching 103.9% (3 pairs), and
  the SMA target's miss (5x backtesting.py against 10x) is that block's cost, listed in
  docs/ARCHITECTURE.md's known limits. Rules cost nothing in a backtest without them (no extra
  wake-ups); with rules, every bar close is a sample. PostgreSQL market-candle ingest through the
  bulk path: 133,058 rows/s in this run (29,451 with the load above).
- Issue 29 (the seed's strategy API, outside signals, recordings, wallet-set pushes, the ledger
  checkpoint's gaps, leaner start-up), A/B against 70311fb in one quiet run after its CI, no full
  `make bench` (the table above is still 2f22b44's): make_order (bench_rpc_ab.py) 100.0% of the
  base's orders/s (7,929 against 7,927, pairs 0.965-1.056, 6/6 within 10%; the host was fast, so
  the 5,000 target held on both sides), server CPU an order 1.007x, server instructions an order
  1.045x (the commit listeners the wallet-set push hangs on, and the count of market messages being
  applied), journal helper instructions an order 0.67x (it imports less). Matching core
  (bench_core_ab.py) 99.8% (459k events/s), SMA backtest's first call 99.5% (0.379 s against
  0.373 s, pairs 0.956-0.998): the hub's `reply_to` pairing costs nothing measurable.
- Issue 28, its first waves (roles, the market data and api replicas apart from the gateway,
  gateway leases with fencing and taking the shard back, circuit breakers, the SQLite connection
  that rolls back as it closes), A/B against 85d85d4 in one quiet run after its CI, no full
  `make bench` (the table above is still 2f22b44's): make_order (bench_rpc_ab.py) 98.6% of the
  base's orders/s (7,397 against 7,302, pairs 0.948-1.097, 6/6 within 10%), server CPU an order
  0.991x, server instructions an order 1.041x (585k against 563k: the step-down, reload and
  writer-halt checks on every command, the role checks, and Api.call's forwarding branch; under
  the 20% that would call for a hot-path idiom). Matching core (bench_core_ab.py) 101.7% (475k
  events/s), SMA backtest's first call 100.5% (0.374 s against 0.378 s). On PostgreSQL the fence
  adds one statement to each commit (0.97 ms to 1.52 ms a commit of one change set, medians of 6
  rounds of 400, measured by its tests' author; a group commit spreads it over its orders).
- make_order through an api replica (benchmarks/bench_replica.py, in `make bench`): 8 /rpc
  clients on a replica forwarding to a `gateway,marketdata` process, against one all-in-one
  process, PostgreSQL + NATS + Redis on loopback. Five runs on this 2-core host: the replica's
  orders/s 102%, 133%, 65%, 91% and 101% of one process's (the host moved by a third between
  rounds; one process 411-900 orders/s); CPU an order 818-1,092 µs in one process against
  219-310 µs in the replica plus 682-985 µs in the gateway's process (10-40% more in all, the
  steadier figure). Two of seven runs stopped at their first call: the gateway's demo exchange
  answered `exchange_not_ready` right after its /readyz said ready (not chased this session).
- Pushes over the bus (2026-12-07, current = 6dec10e against f88316a, benchmarks/bench_rpc_ab.py, 6 alternating
  pairs): wallet sets are now built and published on every change, listened to or not, and import progress goes
  through the bus. make_order 104.1% of the base's orders/s (8,197 against 7,887; pairs 0.921-1.166, 6/6 within
  10%), server instructions an order 1.006x (594k against 591k), server CPU an order 0.962x: no cost on the order
  path (its orders are outside wallet sets).
- Notifications kept for the bus and published again after a kill (2026-12-07, current = the working tree of
  that commit against 8995c5c, benchmarks/bench_rpc_ab.py, 6 alternating pairs): each notified fill's row now
  keeps its seq (one `msgspec.structs.replace` a fill), and a command's batch goes through the gateway's queue.
  make_order 97.8% of the base's orders/s (4,926 against 4,883; pairs 0.914-1.129, 6/6 within 10%), server
  instructions an order 0.997x (575k against 577k): no cost on the order path. The NATS message id on order and
  fill notifications (not on this all-in-one path, which uses the memory bus) was timed apart, ad hoc: a
  make_order's batch (a fill and an order) published and acknowledged one after another on loopback NATS took
  1.049x as long with the id as without (median of 8 alternating rounds of 3,000, 0.977-1.145), about 15 µs
  of a ~300 µs round trip, near 1% of the gateway process's ~1,163 µs of CPU an order.
- The N-core model (`n_cores_model` of benchmarks/bench_replica.py, 2026-12-07): from the measured CPU per
  order of each role (one run: replica 322 µs, gateway's process 1,163 µs; one process 1,070 µs; the replica at
  81% of one process's 731 orders/s, within this host's noise of the earlier 65-133%). A gateway shard is one
  event loop, so one shard tops out near 860 orders/s however many cores there are (one replica feeds it, 0.28
  of a core). If shards scaled linearly, the best split would give about 2,580 (4 cores: 3 shards, 1 replica),
  5,160 (8: 6 + 2) and 10,320 orders/s (16: 12 + 4). Modelled, not measured: two shards at once on one store
  are not safe yet, and PostgreSQL, NATS and Redis are not counted.
- Matching core and SMA backtest A/B (benchmarks/bench_core_ab.py): the same pairing for the two
  benchmarks whose code the venue contract moved (the backtests now trade on the simulated venue).
  Each side runs its own commit's `benchmarks` as well as its `src` (both written out by `git
  archive`), so each is measured by the harness written for it: bench_matching's events/s (best
  of 3) and backtest_sma's `--coinwire-once` seconds (first call in a fresh process). The headline
  is the lower of the two medians of paired ratios; at least 90% is within 10%.
  The venue contract work (issue 22, 2026-12-06, current = 0b61221 against 0b96280): the `make
  bench` run in the table read the SMA backtest at 75.1% (pairs 0.70-0.91) and matching at 110.4%.
  In that run the base's modules were not compiled (PYTHONDONTWRITEBYTECODE is set on this host, so
  its processes compiled every module while the checkout's imported cached bytecode); the harness
  compiles both sides since. Run again alone right after, with both compiled: SMA 100.9% (pairs
  0.75-1.38, the memory benchmark running beside it) and 90.7% (pairs 0.65-1.10, alone, on a slow
  host: matching read 268k events/s against 371k in the table), matching 107.8% and 113.5%. Four
  fresh processes of each, alternated by hand with both compiled, read 0.231/0.242, 0.274/0.286,
  0.277/0.278 and 0.282/0.219 s (base/current). The medians meet the 10%, the spread of the pairs
  is the host's; why the uncompiled base ran faster in the table's run is not understood.
- Memory and restart (benchmarks/bench_memory.py): a gateway in-process on SQLite (no journal)
  takes 1,000,000 orders in concurrent batches of 64 (market orders that fill, every 50th a far
  limit cancelled two batches later), each phase in its own child process; VmRSS after a full
  collection. First runs (2026-12-06, run alone with `python -m benchmarks.bench_memory`, on a
  host at a load of 6-10 from other work): resident memory 201.8 MB after 10,048 orders and
  258.3 MB after 1,000,000 (ratio 1.28; 2,119 orders/s in-process), restart on that store
  0.41 s after a SIGKILL (the lines after the last checkpoint folded in; 5.0 s until the demo
  feed's book made the exchange ready) and 0.24 s after a clean close, 180.9 MB after the
  restart. With the bus's replay window at 100,000 messages the ratio read 1.48 (297.9 MB),
  hence its default of 50,000. The code before (a7d1d9a) at 200,000 orders in the same run as
  the 100,000 one: 189.4 MB after 10,048 orders, 645.5 MB after 200,000 (ratio 3.41, ~2.3 KB
  an order), restart 32.1 s after a SIGKILL and 33.2 s after a close, 565 MB after restarting.
- Candles (benchmarks/candles.py): targets are ingest >= 50,000 rows/s on SQLite and >= 20,000 on
  PostgreSQL (10,000 series closing in one minute are written in well under a second), the
  100-symbol year of minutes (52.6M rows) rolled up to London days in <= 5 s, and a year's daily
  chart through GET /api/v1/ohlcv in <= 50 ms (it reads the 8,760 stored hourly rows).
  `chart_kathmandu_ms` is the fallback to 525,600 minute rows (+05:45 days are off the hour grid):
  seconds, dominated by aiosqlite's row fetch. SQLite ingest measured 55-70k rows/s through
  SQLAlchemy's executemany (~10 us of parameters a row) on slow hours; candle upserts now take
  the store's single-hop SQLite writer (~1 us a row): ~111k in the same hour.

- Push isolation (benchmarks/bench_push.py): issue 20's acceptance, "a client that stops reading,
  or subscribes to the maximum of patterns, changes another client's ticker rate and
  `get_status` latency by less than 20%". `worst_kept_pct` is the worst of those figures as a
  share of the baseline's in the same run (>= 80 passes). Before push streams stopped awaiting
  receivers, the stalled phase's ticker rate was 0 (every ticker waited on the stalled client).
  `python -m benchmarks.bench_push 3 1` runs it alone, shorter.

- Book replay compares side by side with a SortedDict book (sortedcontainers) in the same run:
  `speedup_vs_sorteddict`. Parsing the raw gzip JSON capture costs more than applying it
  (`parse_apply_*`); a live feed parses one message at a time, so that is not the limit.
- make_order over /rpc: with SQLite the server acknowledges a change set once it is appended to
  the store's journal, and a helper process applies it to the database (docs/ARCHITECTURE.md,
  "One command, one transaction"). `direct_sqlite_*` is the same load in the same run against a
  server committing to SQLite on its event loop. Each is the median of 3 rounds in fresh
  servers, the two stores alternating (`*_rounds` lists every round's orders/s).
  In the run above: 5,124 orders/s (rounds 4,987-5,490), p99 4.3 ms, 167 us of server CPU an
  order, in a middling moment of the host (`client_cpu_us_per_order` 52.6). Three more 3-round
  medians of the same code within the hour: 5,977 (139-153 us), 5,397 (136-167 us) and 4,506
  (181-191 us, client 57-61 us: a slow moment). Before this session's steps, 4,224-4,900.
  A market order now takes 0.0002 BTC instead of 0.001: the liquidity it takes stays taken
  until the feed changes the level, and a round above 5,000 orders/s took about as much as the
  demo book's 150 levels a side hold, so it ended in `no_liquidity` (the make bench that found
  this stopped there); at the old size, later orders of a round also walked more levels.
  With 8 clients each waiting for its answer, the server's one thread is the limit: orders/s is
  about `server_busy` / `server_cpu_us_per_order`, and this shared host moves the CPU an order
  by 40% within an hour with the code unchanged (143-205 us in 16 rounds of one hour this
  session; `client_cpu_us_per_order`, 40-60 us for the same client code, shows the moment).
  `server_busy` stays ~0.85: the kernel runs the client process on the server's core, which
  wakes it with every answer, and the two take turns there. Pinning them to separate cores
  (os.sched_setaffinity) raised it to 0.88 but cost as much in CPU an order (a wake-up across
  cores is an interrupt between virtual CPUs, which this VM pays for): no gain over 8 paired
  rounds, so the benchmark leaves placement to the kernel.
  The instruction count does not move with the host: server main-thread instructions an order
  750k three sessions ago, 596k two sessions ago, 466k at the end of the last (475k in this one's first count), 421k in the
  run above (432-440k in runs before the smaller market orders: ~1.5% apart between runs, as
  the batching varies); the journal helper's ~170k run on the other core. Neither sees the garbage collector's full
  passes, which grow with what a long run keeps in memory.
  This session's steps: `make` builds the venvs on the distribution's CPython when it is 3.11+
  (Debian's 3.11.2: PGO, LTO, linked statically) instead of `python3` from PATH (pyenv's
  3.11.7 here: a shared libpython, no PGO): -9% instructions an order on the server, -13% on the
  helper, the matching core 290-334k events/s against 247-288k in alternating runs. Orders,
  fills and wallet lines untracked by the garbage collector (msgspec `gc=False`: scalar fields
  only): in a 10 s round its passes took 0.39 s of the server's time, 0.18-0.21 s of it in four
  full passes over ~170k kept lines and orders (up to 65 ms each, the rounds' max latency),
  and now 0.055 s (~7 us an order). The journal helper at niceness +10, in the server's session
  (a session of its own made it a scheduler group of its own, which a niceness cannot rank
  below the server).
  The session before's steps, each measured by callgrind on the server and on an in-process
  harness of the same order path (commit messages have the figures): audit, owner and candle
  bulk writes through the journal (-3.6%); subscriptions narrowed by message type, so the
  gateway is not woken by its own orders and fills; a connection's allowed methods
  remembered; no generator expressions on the order path; notifications delivered inline by
  the bus and pushed without waiting (-2%); request frames handed to /rpc without an ASGI
  message and a queue (-1.2%); enum members read as module constants (-4.4%). Narrowing the
  notifier to one subscription also fixed a bug the benchmark had hidden: about half of the
  trade notifications of concurrent market orders were lost (tests/api/test_notifier.py).
  Measured and dropped: Cython-compiling the order path's modules unchanged (-10%
  instructions, but minutes of C compilation in every fresh setup and a stale-build hazard),
  committing each order's change set to the journal at once instead of by group commit (-4%
  instructions on the server, +16% on the helper, fewer orders/s), writing each answer without
  waiting for the end of the loop turn, the order view encoded once for answer and
  notification, pyenv's 3.12 build, a larger GC threshold, a 25 ms helper linger. The API's
  WebSocket half in its own process is not the lever it looks like: an `echo` round trip costs
  the server ~52 us, so ~70% of make_order's server time is the order's own work.
  p99 stays a few ms (target 20 ms).
- SMA cross backtest: every engine runs in one `make bench` on the same 500,000 bars (peers in
  .venv-peers) and must reproduce the NumPy reference's entries and final equity (`*_rel_diff`).
  In the run above it reads 9.75x (coinwire 0.36 s, backtesting.py 3.5 s, both now on Debian's
  CPython: the peers' venv is made by the same `make`); the last session's runs read 8.6x
  (0.47 s, 4.0 s) and 11.9x (0.37 s, 4.4 s) 40 minutes apart with the backtest's code unchanged,
  and the session before 9.8x (the same 0.37-0.49 s, backtesting.py 3.8 s there against 9.0 s
  on the host before it, where the ratio was 14x).
  The ratio to backtesting.py moves with both single runs: backtesting.py took 3.7 s in one
  run and 2.4-2.65 s in later ones (same pinned versions), and one noisy moment in coinwire's
  ~0.2 s moved it from 13x to 8.4x. coinwire's figure is now, like every peer's, the first
  call in a fresh process after imports (its strategy module included, ~20 ms that a lookup
  by name used to add), taken as the median of three processes.
  Times are each engine's compute on arrays already in memory; `*_process_s` are whole processes
  (start to exit, file parsing included): `coinwire run ma_cross ... --json` against a `python -c`
  vectorbt script doing the same, with numba's on-disk cache warm (`vectorbt_process_s`) and
  empty (`vectorbt_process_cold_cache_s`). Ratios `*_over_coinwire` > 1 mean coinwire is faster;
  targets: `coinwire_speedup_vs_backtesting` >= 10, `coinwire_over_vectorbt_warm` <= 5,
  `vectorbt_process_over_coinwire_process` > 1. How each peer is made to match: docs/PEERS.md.
- Efficient frontier: both sides start from the same aligned closes and definitions (simple
  returns, mean and sample covariance x 8,760). `coinwire_solve_ms` is the critical-line
  frontier plus its 100 points from the estimates; `pypfopt_frontier_s` is PyPortfolioOpt's 100
  `efficient_return` solves (CLARABEL: OSQP stops at its iteration limit near the top of this
  frontier), timed inside its own process. `max_weight_diff_*` check they computed the same
  portfolios; `random_above_frontier` must be 0. Method: docs/FRONTIER.md.
"""


def _run(module: str) -> dict[str, Any]:
    import importlib

    fn: Callable[[], dict[str, Any]] = importlib.import_module(module).run
    started = time.perf_counter()
    result = fn()
    result["_seconds"] = round(time.perf_counter() - started, 1)
    return result


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if value == 0 or abs(value) >= 0.01 else f"{value:.1e}"  # rel diffs stay visible
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def main() -> None:
    results = {}
    for name, module, *_ in BENCHES:
        print(f"running {name} ...", flush=True)
        results[name] = _run(module)
        print(f"  {results[name]}", flush=True)
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (benchmarks/run.py); do not edit by hand. Figures are from one run on the",
        "machine named below; compare ratios, not absolute numbers, across machines.",
        "",
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {platform.machine()}, {platform.system()}, {os.cpu_count()} CPUs,"
        f" Python {sys.version.split()[0]} ({os.path.realpath(sys.executable)})",
        "",
        "| benchmark | result | target | ratio to target | what |",
        "|---|---|---|---|---|",
    ]
    for name, _, key, target, unit, what in BENCHES:
        value = results[name].get(key)
        if isinstance(value, (int, float)) and name in AT_MOST:
            lines.append(f"| {name} | {value:,.2f} {unit} | ≤ {target:,.2f} | {target / value:.2f} | {what} |")
        elif isinstance(value, (int, float)):
            lines.append(f"| {name} | {value:,.0f} {unit} | ≥ {target:,.0f} | {value / target:.2f} | {what} |")
        else:
            lines.append(f"| {name} | n/a ({results[name].get('skipped', 'no figure')}) | ≥ {target:,.0f} | | {what} |")
    for name, *_ in BENCHES:
        lines += ["", f"## {name}", "", "| figure | value |", "|---|---|"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in results[name].items()]
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text("\n".join(lines) + "\n" + NOTES)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
