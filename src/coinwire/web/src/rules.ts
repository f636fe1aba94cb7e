// Pure helpers of the Rules page: the form's rule and action kinds, reading a form into a rule set's JSON, live state rows, firing marks.

import type { RuleFiring, RulePart, RuleSet } from "./api/types";
import { parse as parseDec, cmp, type Dec } from "./decimal";
import type { ScopeRef } from "./portfolio";

/** What one input of a rule or action is: its JSON field, label, kind of value and the bounds the server also checks. */
export interface FieldSpec {
  name: string;
  label: string;
  type: "decimal" | "text" | "numbers" | "op" | "days" | "bool";
  required?: boolean;
  /** Decimal bounds as [value, inclusive]. */
  min?: [string, boolean];
  max?: [string, boolean];
  placeholder?: string;
  initial?: string;
}

export interface KindSpec {
  kind: string;
  label: string;
  fields: FieldSpec[];
  /** Of these fields, exactly one is given (an absolute level or a percentage; a threshold or another series). */
  oneOf?: [string, string];
}

const PCT: FieldSpec["max"] = ["100", false];
const POSITIVE: FieldSpec["min"] = ["0", false];

export const RULE_KINDS: KindSpec[] = [
  { kind: "portfolio_trailing_stop", label: "Portfolio trailing stop", fields: [
    { name: "arm_pct", label: "Arm after a rise of (%)", type: "decimal", required: true, min: ["0", true], initial: "10" },
    { name: "trail_pct", label: "Fire on a fall from the peak of (%)", type: "decimal", required: true, min: POSITIVE, max: PCT, initial: "5" }] },
  { kind: "portfolio_stop", label: "Portfolio stop", oneOf: ["value", "pct"], fields: [
    { name: "value", label: "At or below the value", type: "decimal", min: POSITIVE, placeholder: "e.g. 9000" },
    { name: "pct", label: "or a fall from the reference of (%)", type: "decimal", min: POSITIVE, max: PCT, placeholder: "e.g. 10" }] },
  { kind: "portfolio_take_profit", label: "Portfolio take profit", oneOf: ["value", "pct"], fields: [
    { name: "value", label: "At or above the value", type: "decimal", min: POSITIVE, placeholder: "e.g. 12000" },
    { name: "pct", label: "or a rise from the reference of (%)", type: "decimal", min: POSITIVE, placeholder: "e.g. 20" }] },
  { kind: "max_drawdown", label: "Maximum drawdown", fields: [
    { name: "pct", label: "Drawdown from the peak (%)", type: "decimal", required: true, min: POSITIVE, max: PCT, initial: "10" },
    { name: "window", label: "Over (empty: since enabled)", type: "text", placeholder: "e.g. 7d" }] },
  { kind: "indicator", label: "Indicator", oneOf: ["threshold", "other"], fields: [
    { name: "series", label: "Series", type: "text", required: true, placeholder: "market:binance:BTC-USDT:1h or portfolio" },
    { name: "indicator", label: "Indicator", type: "text", required: true, placeholder: "rsi, sma, ema, drawdown…" },
    { name: "params", label: "Parameters", type: "numbers", placeholder: "e.g. 14" },
    { name: "op", label: "Holds when", type: "op", initial: "above" },
    { name: "threshold", label: "Threshold", type: "decimal", placeholder: "e.g. 80" },
    { name: "other", label: "or another output (key)", type: "text", placeholder: "e.g. portfolio:sma(50)" }] },
  { kind: "time_window", label: "Time window", fields: [
    { name: "start", label: "From (local time)", type: "text", initial: "00:00" },
    { name: "end", label: "Until", type: "text", initial: "24:00" },
    { name: "days", label: "Days", type: "days", placeholder: "mon, tue, … (empty: every day)" },
    { name: "tz", label: "Time zone (empty: yours)", type: "text" }] },
  { kind: "position_trailing_stop", label: "Position trailing stop", fields: [
    { name: "symbol", label: "Market", type: "text", required: true, placeholder: "BTC/USDT" },
    { name: "exchange", label: "Exchange (empty: any)", type: "text" },
    { name: "arm_pct", label: "Arm after a move in its favour of (%)", type: "decimal", required: true, min: ["0", true], initial: "5" },
    { name: "trail_pct", label: "Fire on a move back of (%)", type: "decimal", required: true, min: POSITIVE, max: PCT, initial: "2" }] },
];

export const ACTION_KINDS: KindSpec[] = [
  { kind: "close_all", label: "Close everything (sell to the quote)", fields: [
    { name: "currency", label: "Into (empty: each market's quote)", type: "text", placeholder: "e.g. USDT" },
    { name: "pause", label: "Pause a run's entries too", type: "bool", initial: "true" }] },
  { kind: "cancel_orders", label: "Cancel open orders", fields: [] },
  { kind: "stop_run", label: "Stop the run", fields: [] },
  { kind: "pause_entries", label: "Pause the run's entries", fields: [] },
  { kind: "scale_orders", label: "Scale the run's order sizes", fields: [
    { name: "factor", label: "Factor", type: "decimal", required: true, min: POSITIVE, max: ["10", true], initial: "0.5" }] },
  { kind: "notify", label: "Notify me", fields: [{ name: "message", label: "Message (empty: the firing's values)", type: "text" }] },
  { kind: "webhook", label: "Call a webhook (signed POST)", fields: [
    { name: "url", label: "URL", type: "text", required: true, placeholder: "https://…" },
    { name: "secret", label: "Signing secret", type: "text" }] },
];

export const OPS = ["above", "below", "cross_above", "cross_below"] as const;
export const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] as const;

export function kindSpec(kinds: KindSpec[], kind: string): KindSpec | undefined {
  return kinds.find((k) => k.kind === kind);
}

function inBounds(d: Dec, f: FieldSpec): boolean {
  for (const [bound, lower] of [[f.min, true], [f.max, false]] as const) {
    if (!bound) continue;
    const b = parseDec(bound[0])!;
    const c = cmp(d, b);
    if (lower ? c < 0 || (c === 0 && !bound[1]) : c > 0 || (c === 0 && !bound[1])) return false;
  }
  return true;
}

function boundsText(f: FieldSpec): string {
  const parts: string[] = [];
  if (f.min) parts.push(`${f.min[1] ? "at least" : "above"} ${f.min[0]}`);
  if (f.max) parts.push(`${f.max[1] ? "at most" : "below"} ${f.max[0]}`);
  return parts.join(" and ");
}

/**
 * A rule's or an action's inputs (text as typed) as its JSON part, or the words saying what is wrong. Empty optional
 * fields are left out (the server's defaults apply); decimals stay exact strings. The server checks everything again.
 */
export function partFromFields(spec: KindSpec, values: Record<string, string>): RulePart | string {
  const out: RulePart = { kind: spec.kind };
  for (const f of spec.fields) {
    const raw = (values[f.name] ?? "").trim();
    if (!raw) {
      if (f.required) return `${spec.label}: give ${f.label.toLowerCase()}.`;
      continue;
    }
    if (f.type === "decimal") {
      const d = parseDec(raw);
      if (!d) return `${spec.label}: ${f.label.toLowerCase()} is not a number ("${raw}").`;
      if (!inBounds(d, f)) return `${spec.label}: ${f.label.toLowerCase()} must be ${boundsText(f)}.`;
      out[f.name] = raw;
    } else if (f.type === "numbers") {
      const items = raw.split(/[\s,]+/).filter(Boolean).map(Number);
      if (items.some((n) => !Number.isFinite(n))) return `${spec.label}: ${f.label.toLowerCase()} are numbers separated by commas.`;
      out[f.name] = items;
    } else if (f.type === "days") {
      const items = raw.toLowerCase().split(/[\s,]+/).filter(Boolean);
      const bad = items.find((x) => !(DAYS as readonly string[]).includes(x));
      if (bad) return `${spec.label}: "${bad}" is not a day (${DAYS.join(", ")}).`;
      out[f.name] = items;
    } else if (f.type === "bool") {
      out[f.name] = raw === "true";
    } else {
      out[f.name] = raw;
    }
  }
  if (spec.oneOf) {
    const given = spec.oneOf.filter((k) => out[k] !== undefined);
    if (given.length !== 1) {
      const [a, b] = spec.oneOf.map((k) => spec.fields.find((f) => f.name === k)!.label.replace(/^or /, "").toLowerCase());
      return `${spec.label}: give either ${a} or ${b}, not ${given.length ? "both" : "neither"}.`;
    }
  }
  return out;
}

/** The body a new rule set is created with; `scope_id` is left out for the user's whole portfolio (the caller itself). */
export interface RuleSetDraft {
  name: string;
  scope: ScopeRef;
  mode: "live" | "dry_run";
  after: "once" | "rearm";
  cooldown: string;
  enabled: boolean;
  rules: RulePart[];
  actions: RulePart[];
}

export function ruleSetBody(d: RuleSetDraft): Record<string, unknown> | string {
  if (!d.name.trim()) return "Give the rule set a name.";
  if (!d.rules.length) return "Add at least one rule: the rule set fires when all of them hold.";
  if (!d.actions.length) return "Add at least one action: what runs, in order, when it fires.";
  if (d.after === "rearm" && !d.cooldown.trim()) return "Re-arming needs a cooldown (e.g. 1h).";
  const body: Record<string, unknown> = { name: d.name.trim(), scope: d.scope.scope, mode: d.mode, after: d.after, enabled: d.enabled,
    rules: d.rules, actions: d.actions };
  if (d.scope.scope !== "user") body.scope_id = d.scope.id;
  if (d.after === "rearm") body.cooldown = d.cooldown.trim();
  return body;
}

/** The one-click preset: a trailing stop on the whole scope that sells everything when it fires. */
export function trailingStopPreset(armPct: string, trailPct: string): { rules: RulePart[]; actions: RulePart[] } | string {
  const rule = partFromFields(kindSpec(RULE_KINDS, "portfolio_trailing_stop")!, { arm_pct: armPct, trail_pct: trailPct });
  if (typeof rule === "string") return rule;
  return { rules: [rule], actions: [{ kind: "close_all" }] };
}

/** Enabling it may sell everything for real: a live rule set with a close_all asks first (the server wants `confirm`). */
export function needsConfirm(rs: { mode: string; actions: readonly RulePart[] }): boolean {
  return rs.mode === "live" && rs.actions.some((a) => a.kind === "close_all");
}

/** One line a person reads for a rule or action: its label and its parameters. */
export function describe(part: RulePart): string {
  const spec = kindSpec(RULE_KINDS, part.kind) ?? kindSpec(ACTION_KINDS, part.kind);
  const p = (k: string) => part[k];
  switch (part.kind) {
    case "portfolio_trailing_stop":
      return `Trailing stop: arm at +${p("arm_pct")}%, trail ${p("trail_pct")}%`;
    case "position_trailing_stop":
      return `Trailing stop on ${p("exchange") ? `${p("exchange")}:` : ""}${p("symbol")}: arm ${p("arm_pct")}%, trail ${p("trail_pct")}%`;
    case "portfolio_stop":
      return p("value") !== undefined && p("value") !== null ? `Stop at ${p("value")}` : `Stop at -${p("pct")}%`;
    case "portfolio_take_profit":
      return p("value") !== undefined && p("value") !== null ? `Take profit at ${p("value")}` : `Take profit at +${p("pct")}%`;
    case "max_drawdown":
      return `Drawdown ≥ ${p("pct")}%${p("window") ? ` over ${p("window")}` : ""}`;
    case "indicator": {
      const params = Array.isArray(p("params")) && (p("params") as unknown[]).length ? `(${(p("params") as unknown[]).join(", ")})` : "";
      const than = p("threshold") !== undefined && p("threshold") !== null ? p("threshold") : p("other");
      return `${p("indicator")}${params} of ${p("series")} ${String(p("op")).replace("_", " ")} ${than}`;
    }
    case "time_window": {
      const days = Array.isArray(p("days")) && (p("days") as unknown[]).length < 7 ? ` on ${(p("days") as unknown[]).join(", ")}` : "";
      return `Between ${p("start") ?? "00:00"} and ${p("end") ?? "24:00"}${days}${p("tz") ? ` (${p("tz")})` : ""}`;
    }
    case "close_all":
      return `Close everything${p("currency") ? ` into ${p("currency")}` : ""}`;
    case "scale_orders":
      return `Scale orders ×${p("factor")}`;
    case "webhook":
      return `Webhook ${p("url")}`;
    default:
      return spec?.label ?? part.kind;
  }
}

/** A rule's live state as the page shows it (what the server's status holds; a field it leaves out is null). */
export interface RuleState {
  kind: string;
  armed: boolean | null;
  holds: boolean | null;
  reference: string | null;
  value: string | null;
  peak: string | null;
  trigger: string | null;
  /** The value a trailing stop arms at; a stop's or take profit's level. */
  armLevel: string | null;
  level: string | null;
  /** How far the value is above the trigger, in percent of the value. */
  distancePct: number | null;
  /** An indicator rule: the analysis key it reads, the analyser's current value of it, and what it is compared with. */
  indicator: string | null;
  indicatorValue: string | null;
  comparedTo: string | null;
}

function str(v: unknown): string | null {
  return v === null || v === undefined || v === "" ? null : String(v);
}

function bool(v: unknown): boolean | null {
  return typeof v === "boolean" ? v : null;
}

/** The server's `status` (a list of per-rule states, or an object holding one under `rules`) as rows, one per rule. */
export function ruleStates(rs: Pick<RuleSet, "rules" | "status">): RuleState[] {
  const s = rs.status as { rules?: unknown } | unknown[] | null | undefined;
  const list = (Array.isArray(s) ? s : Array.isArray((s as { rules?: unknown })?.rules) ? (s as { rules: unknown[] }).rules : []) as Record<string, unknown>[];
  return rs.rules.map((rule, i) => {
    const r = (list[i] ?? {}) as Record<string, unknown>;
    const value = str(r.value), trigger = str(r.trigger);
    let distance = r.distance_pct === undefined || r.distance_pct === null ? null : Number(r.distance_pct);
    if (distance === null && value !== null && trigger !== null && Number(value) !== 0) {
      distance = ((Number(value) - Number(trigger)) / Number(value)) * 100;
    }
    return {
      kind: String(r.kind ?? rule.kind),
      armed: bool(r.armed),
      holds: bool(r.holds),
      reference: str(r.reference),
      value,
      peak: str(r.peak),
      trigger,
      armLevel: str(r.arm_level),
      level: str(r.level),
      distancePct: distance !== null && Number.isFinite(distance) ? distance : null,
      indicator: str(r.indicator),
      indicatorValue: str(r.indicator_value),
      comparedTo: str(r.compared_to),
    };
  });
}

/** Whether an analysis key's values are money of the user's (a portfolio, a balance, a position's PnL): masked like them.
 * A market's indicators (an RSI, a price SMA) are public figures and stay readable. */
export function privateKey(key: string): boolean {
  return /^(portfolio|balance|position)[.:]/.test(key);
}

/** An analyser value for the live state: at most 4 decimals (an RSI of 71.2345), whole numbers as they are. */
export function analysisFigure(v: string): string {
  const n = Number(v);
  if (!Number.isFinite(n)) return v;
  return Number.isInteger(n) ? String(n) : n.toFixed(Math.abs(n) >= 1000 ? 2 : 4).replace(/0+$/, "").replace(/\.$/, "");
}

/** The rule set's state in one word: off, waiting (no sample yet), watching, armed, fired (done until enabled again). */
export function stateWord(rs: Pick<RuleSet, "enabled" | "rules" | "status">): "disabled" | "fired" | "armed" | "watching" | "waiting" {
  if (!rs.enabled) return "disabled";
  const s = rs.status as Record<string, unknown> | null | undefined;
  if (s && !Array.isArray(s) && s.done === true) return "fired";
  const states = ruleStates(rs);
  if (states.some((r) => r.armed === true)) return "armed";
  if (!s || states.every((r) => r.value === null)) return "waiting";
  return "watching";
}

/** Is this rule set on the portfolio `ref` shows? A rule set on the user's whole portfolio may leave its id out. */
export function onScope(rs: Pick<RuleSet, "scope" | "scope_id">, ref: ScopeRef): boolean {
  if (rs.scope !== ref.scope) return false;
  return rs.scope_id === null || rs.scope_id === undefined ? ref.scope === "user" : String(rs.scope_id) === ref.id;
}

/** A firing drawn on a portfolio chart: when, and a short label (the rule set's name, "dry run" when nothing was traded). */
export interface FiringMark {
  time: number;
  label: string;
}

export function firingMarks(name: string, firings: readonly RuleFiring[]): FiringMark[] {
  return firings
    .filter((f) => Number.isFinite(Number(f.time)))
    .map((f) => ({ time: Number(f.time), label: `⚑ ${name}${f.mode === "dry_run" ? " (dry run)" : ""}` }))
    .sort((a, b) => a.time - b.time);
}

/** The list answers of the API as arrays, whether bare or under a key (`{"rule_sets": [...]}`, `{"firings": [...]}`). */
export function listOf<T>(answer: unknown, key: string): T[] {
  if (Array.isArray(answer)) return answer as T[];
  const inner = (answer as Record<string, unknown> | null)?.[key];
  return Array.isArray(inner) ? (inner as T[]) : [];
}
