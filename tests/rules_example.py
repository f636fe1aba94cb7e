"""The issue's example rule set file (docs/RULES.md quotes it): a portfolio trailing stop that closes everything."""

ISSUE_EXAMPLE = """
[[rule_sets]]
name = "portfolio stop"
scope = "run"            # account | wallet_set | run | user (a backtest: run)
mode = "live"            # or "dry_run"
after = "once"           # or "rearm", with cooldown = "1h"
[[rule_sets.rules]]
kind = "portfolio_trailing_stop"
arm_pct = 10
trail_pct = 5
[[rule_sets.actions]]
kind = "close_all"
"""
