// Schedules: the user's scheduled jobs (cron or every, in a time zone) with their next runs, and a form to add one.

import type { App } from "../app";
import type { Runnable, RunSummary, Schedule, ScheduleJob } from "../api/types";
import * as fmt from "../format";
import { prefs } from "../prefs";
import { ZONES } from "./markets";
import { Disposer, fill, h, placeholder } from "../ui/dom";

const PATH = "/api/v1/schedules";
const JOB_KINDS: [string, string][] = [
  ["retrieve_rates", "Retrieve rates"],
  ["run_strategy", "Run a strategy for a period"],
  ["strategy_step", "A running strategy's step"],
  ["housekeeping", "Housekeeping (admins)"],
];

export function schedulesPage(app: App, _p: Record<string, string>, d: Disposer): HTMLElement {
  const list = h("div", { "data-testid": "schedules-list" }, placeholder("loading", "Loading schedules…"));
  const error = h("p", { class: "error", role: "alert", "data-testid": "schedules-error" });
  const load = async (): Promise<void> => {
    try {
      const listed = await app.http.get<Schedule[]>(PATH);
      // a list carries each schedule's next run; one schedule's own answer its next five
      const full = await Promise.all(listed.map((s) => app.http.get<Schedule>(`${PATH}/${s.id}`).catch(() => s)));
      fill(list, full.length ? schedulesTable(app, full, load, error)
        : placeholder("empty", app.can("manage", "schedule") ? "No schedules yet: add one below." : "No schedules."));
    } catch (e) {
      fill(list, placeholder("error", `Schedules could not be read: ${(e as Error).message}`));
    }
  };
  void load();
  d.every(30_000, () => void load()); // the next runs move on
  const admin = app.can("admin", "user");
  return h("div", { class: "page schedules" },
    h("section", { class: "card" }, h("h3", {}, "Schedules"),
      admin ? h("p", { class: "muted" }, "As an admin you see every user's schedules and the server's own.") : null,
      error, list),
    addForm(app, load));
}

/** A time of the API (epoch ms) as the user reads it, in their time zone. */
function when(ms: number): string {
  return fmt.time(ms / 1000);
}

/** "*\/5 * * * *" or "every 1m": what the schedule's times are made of. */
function specOf(s: Schedule): string {
  return s.cron ? s.cron : s.every ? `every ${s.every}` : "–";
}

/** One line on what the job does: its kind and what it names (strategy, run, step, markets). */
export function jobSummary(job: ScheduleJob): string {
  const label = JOB_KINDS.find(([k]) => k === job.kind)?.[1].replace(" (admins)", "") ?? job.kind;
  const s = (k: string) => (job[k] === undefined || job[k] === null || job[k] === "" ? "" : String(job[k]));
  if (job.kind === "run_strategy") return [label, s("strategy"), s("mode"), s("for") && `for ${s("for")}`].filter(Boolean).join(" · ");
  if (job.kind === "strategy_step") return [label, s("run_id"), s("step") && `step ${s("step")}`].filter(Boolean).join(" · ");
  if (job.kind === "retrieve_rates") {
    const markets = Array.isArray(job.markets) ? (job.markets as string[][]).map(([e, sym]) => `${e}:${sym}`) : [];
    return `${label} · ${markets.length ? markets.join(", ") : "every market with a running feed"}`;
  }
  return label;
}

/** The latest tick: its outcome (ok, error, unfinished), when, and the error's words. */
function outcomeOf(s: Schedule): { text: string; cls: string; why: string } {
  const t = s.last_tick;
  if (!t) return { text: "not run yet", cls: "", why: "" };
  return { text: `${t.outcome} · ${when(t.tick_at)}`, cls: t.outcome, why: t.error ?? "" };
}

function schedulesTable(app: App, schedules: Schedule[], reload: () => Promise<void>, error: HTMLElement): HTMLElement {
  const me = app.abilities.value?.user.id;
  const manage = app.can("manage", "schedule");
  const act = async (what: string, run: () => Promise<unknown>, done: string): Promise<void> => {
    error.textContent = "";
    try {
      await run();
      app.toast(done);
    } catch (e) {
      error.textContent = `${what}: ${(e as Error).message}`;
    }
    await reload();
  };
  const rows = schedules.map((s) => {
    const path = `${PATH}/${s.id}`;
    const state = s.paused ? "paused" : "active";
    const outcome = outcomeOf(s);
    const toggle = h("button", { type: "button", class: "ghost", "data-action": s.paused ? "resume" : "pause",
      onclick: () => void act(s.paused ? "Resume" : "Pause", () => app.http.post(`${path}/${s.paused ? "resume" : "pause"}`),
        `${s.name} ${s.paused ? "resumed" : "paused"}.`) }, s.paused ? "Resume" : "Pause");
    const remove = h("button", { type: "button", class: "ghost danger", "data-action": "remove", onclick: async () => {
      if (!(await app.confirm(`Remove ${s.name}?`, "The schedule and its history of runs are deleted; runs it started are kept.", "Remove"))) return;
      await act("Remove", () => app.http.delete(path), `${s.name} removed.`);
    } }, "Remove");
    const whose = s.system ? h("span", { class: "badge" }, "server") : s.owner_id !== me ? h("span", { class: "badge" }, `user ${s.owner_id}`) : null;
    return h("tr", { "data-testid": "schedule-row", "data-schedule": String(s.id) },
      h("td", { "data-label": "Name" }, s.name, " ", whose),
      h("td", { "data-label": "Spec" }, h("span", { class: "mono", "data-testid": "schedule-spec" }, specOf(s)),
        s.misfire.policy === "catch_up" ? h("div", { class: "muted why" }, `catches up at most ${s.misfire.limit} missed`) : null),
      h("td", { "data-label": "Time zone" }, s.timezone),
      h("td", { "data-label": "Job", "data-testid": "schedule-job" }, jobSummary(s.job)),
      h("td", { "data-label": "State" }, h("span", { class: `badge ${s.paused ? "stopped" : "running"}`, "data-testid": "schedule-state" }, state)),
      h("td", { "data-label": "Next runs", "data-testid": "schedule-next" }, s.next_runs.length
        ? h("ol", { class: "next-runs" }, ...s.next_runs.map((t) => h("li", { title: t.at }, when(t.ms))))
        : h("span", { class: "muted" }, s.paused ? "paused" : "none")),
      h("td", { "data-label": "Last run", "data-testid": "schedule-outcome" }, h("span", { class: `badge ${outcome.cls}` }, outcome.text),
        outcome.why ? h("div", { class: "muted why" }, outcome.why) : null),
      h("td", {}, manage ? h("div", { class: "row nowrap" }, toggle, remove) : null));
  });
  return h("div", { class: "table-wrap" }, h("table", { class: "grid stack" },
    h("thead", {}, h("tr", {}, ...["Name", "Spec", "Time zone", "Job", "State", `Next runs (${prefs.value.tz})`, "Last run", ""].map((t) => h("th", {}, t)))),
    h("tbody", {}, ...rows)));
}

/** "demo:BTC/USDT, binance:ETH/USDT" as the job's [[exchange, symbol], ...]; or why it cannot be read. */
function marketsOf(text: string): string[][] | string | undefined {
  const items = text.split(/[\s,]+/).filter(Boolean);
  if (!items.length) return undefined;
  const out: string[][] = [];
  for (const item of items) {
    const m = /^([a-z0-9_-]+):([A-Za-z0-9]+[/_][A-Za-z0-9]+)$/.exec(item);
    if (!m) return `"${item}" is not exchange:symbol (e.g. demo:BTC/USDT).`;
    out.push([m[1], m[2].replace("_", "/").toUpperCase()]);
  }
  return out;
}

/** "demo:USDT=1000, demo:BTC=0.1" as a run's balances {"demo:USDT": "1000", ...}; or why it cannot be read. */
function balancesOf(text: string): Record<string, string> | string {
  const out: Record<string, string> = {};
  for (const item of text.split(/[\s,]+/).filter(Boolean)) {
    const m = /^([a-z0-9_-]+):([A-Za-z0-9]+)=([0-9]+(?:\.[0-9]+)?)$/.exec(item);
    if (!m) return `"${item}" is not exchange:CURRENCY=amount (e.g. demo:USDT=1000).`;
    out[`${m[1]}:${m[2].toUpperCase()}`] = m[3];
  }
  return Object.keys(out).length ? out : "Give the run its funds, e.g. demo:USDT=1000.";
}

/** The job's own fields for each kind, and how to read them into the job object (or why they cannot be sent). */
function jobFields(app: App): { el: HTMLElement; kind: HTMLSelectElement; read: () => ScheduleJob | string } {
  const kinds = JOB_KINDS.filter(([k]) => k !== "housekeeping" || app.can("admin", "user"));
  const kind = h("select", { name: "job_kind", "aria-label": "job kind" }, ...kinds.map(([k, label]) => h("option", { value: k }, label)));
  const markets = h("input", { name: "markets", "aria-label": "markets", placeholder: "demo:BTC/USDT, … (empty: every running feed)", autocomplete: "off" });
  const strategy = h("select", { name: "strategy", "aria-label": "strategy" });
  const period = h("input", { name: "for", "aria-label": "each run lasts", placeholder: "e.g. 30m, 8h, 1d", autocomplete: "off" });
  const mode = h("select", { name: "mode", "aria-label": "mode" }, ...["paper", "live", "backtest"].map((m) => h("option", { value: m }, m)));
  const balances = h("input", { name: "balances", "aria-label": "funds", placeholder: "demo:USDT=1000, demo:BTC=0.1", autocomplete: "off" });
  const params = h("input", { name: "params", "aria-label": "parameters", class: "mono", placeholder: '{"fast": 20, "slow": 50} (empty: the defaults)', autocomplete: "off" });
  const run = h("select", { name: "run_id", "aria-label": "run" });
  const step = h("input", { name: "step", "aria-label": "step name", value: "step", autocomplete: "off" });
  const groups: Record<string, HTMLElement[]> = {
    retrieve_rates: [h("label", { class: "wide" }, "Markets", markets)],
    run_strategy: [h("label", {}, "Strategy", strategy), h("label", {}, "Mode", mode), h("label", {}, "Each run lasts", period),
      h("label", {}, "Funds", balances), h("label", { class: "wide" }, "Parameters (JSON)", params)],
    strategy_step: [h("label", {}, "Run", run), h("label", {}, "Step", step),
      h("p", { class: "muted wide" }, "Each tick calls the running strategy's on_step with this name.")],
    housekeeping: [h("p", { class: "muted wide" }, "Deletes finished ticks older than the server's retention, keeping each schedule's latest.")],
  };
  const show = () => {
    for (const [k, els] of Object.entries(groups)) for (const el of els) el.hidden = k !== kind.value;
  };
  kind.addEventListener("change", show);
  show();
  app.http.get<Runnable[]>("/runnables").then((list) => fill(strategy, ...list.map((r) => h("option", { value: r.name }, r.name))),
    () => fill(strategy, h("option", { value: "" }, "(no strategies you may run)")));
  app.http.get<RunSummary[]>("/runs").then((runs) => {
    const running = runs.filter((r) => r.status === "running");
    fill(run, ...(running.length ? running.map((r) => h("option", { value: r.run_id }, `${r.run_id} (${r.strategy ?? ""})`))
      : [h("option", { value: "" }, "(no running run)")]));
  }, () => fill(run, h("option", { value: "" }, "(no runs you may see)")));
  return {
    el: h("div", { class: "form-grid" }, ...Object.values(groups).flat()),
    kind,
    read: () => {
      if (kind.value === "retrieve_rates") {
        const m = marketsOf(markets.value);
        return typeof m === "string" ? m : m ? { kind: kind.value, markets: m } : { kind: kind.value };
      }
      if (kind.value === "run_strategy") {
        if (!strategy.value) return "Choose a strategy to run.";
        if (!period.value.trim()) return "Say how long each run lasts (e.g. 1h).";
        const b = balancesOf(balances.value);
        if (typeof b === "string") return b;
        let p: unknown = {};
        if (params.value.trim()) {
          try {
            p = JSON.parse(params.value);
          } catch {
            return "Parameters: a JSON object, e.g. {\"fast\": 20}.";
          }
          if (typeof p !== "object" || p === null || Array.isArray(p)) return "Parameters: a JSON object, e.g. {\"fast\": 20}.";
        }
        return { kind: kind.value, strategy: strategy.value, mode: mode.value, balances: b, params: p, for: period.value.trim() };
      }
      if (kind.value === "strategy_step") {
        if (!run.value) return "Choose a running run.";
        if (!step.value.trim()) return "Give the name of the step to call.";
        return { kind: kind.value, run_id: run.value, step: step.value.trim() };
      }
      return { kind: kind.value };
    },
  };
}

function addForm(app: App, added: () => Promise<void>): HTMLElement {
  const name = h("input", { name: "name", "aria-label": "name", placeholder: "e.g. rates every minute", autocomplete: "off" });
  const how = h("select", { name: "how", "aria-label": "repeat by" }, h("option", { value: "cron" }, "Cron expression"), h("option", { value: "every" }, "Every (interval)"));
  const spec = h("input", { name: "spec", "aria-label": "cron or interval", class: "mono", value: "*/5 * * * *", autocomplete: "off" });
  const zones = [...new Set([prefs.value.tz, ...ZONES])];
  const tz = h("select", { name: "timezone", "aria-label": "time zone" }, ...zones.map((z) => h("option", { value: z, selected: z === prefs.value.tz }, z)));
  const policy = h("select", { name: "misfire", "aria-label": "misfire policy" },
    h("option", { value: "skip" }, "Run the latest missed one"), h("option", { value: "catch_up" }, "Catch up missed runs"));
  const limit = h("input", { name: "limit", "aria-label": "catch-up limit", type: "number", min: 1, max: 1000, value: 10 });
  const limitLabel = h("label", {}, "At most (missed runs caught up)", limit);
  const hint = h("small", { class: "muted" });
  const job = jobFields(app);
  const error = h("p", { class: "error", role: "alert", "data-testid": "schedule-form-error" });
  const showHow = () => {
    spec.placeholder = how.value === "cron" ? "*/5 * * * *" : "1m, 15m, 1h, 1d, 1w";
    hint.textContent = how.value === "cron" ? "minute hour day month weekday, in the chosen time zone (DST-correct)" : "a count and a unit: s, m, h, d, w (30s, 1m, 1h, 1d, 1w)";
  };
  how.addEventListener("change", () => {
    spec.value = how.value === "cron" ? "*/5 * * * *" : "1m";
    showHow();
  });
  showHow();
  const showLimit = () => (limitLabel.hidden = policy.value !== "catch_up");
  policy.addEventListener("change", showLimit);
  showLimit();
  const submit = h("button", { type: "submit", class: "primary" }, "Add schedule");
  const form = h("form", { class: "card", "aria-label": "add a schedule", "data-testid": "add-schedule" },
    h("h3", {}, "Add a schedule"),
    h("div", { class: "form-grid" },
      h("label", {}, "Name", name),
      h("label", {}, "Repeat by", how),
      h("label", {}, "When", spec, hint),
      h("label", {}, "Time zone", tz),
      h("label", {}, "If runs were missed (server down)", policy),
      limitLabel,
      h("label", {}, "Job", job.kind)),
    job.el,
    !app.can("manage", "schedule") ? h("p", { class: "muted", "data-testid": "schedules-read-only" },
      `Your role (${app.abilities.value?.user.role ?? "?"}) lists schedules; adding and changing them is for traders.`) : null,
    error, submit);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.textContent = "";
    if (!name.value.trim()) return void (error.textContent = "Give the schedule a name.");
    if (!spec.value.trim()) return void (error.textContent = how.value === "cron" ? "Give a cron expression, e.g. */5 * * * *." : "Give an interval, e.g. 1m.");
    const j = job.read();
    if (typeof j === "string") return void (error.textContent = j);
    const body: Record<string, unknown> = { name: name.value.trim(), [how.value]: spec.value.trim(), timezone: tz.value, job: j,
      misfire: policy.value === "catch_up" ? { policy: "catch_up", limit: Math.round(Number(limit.value)) } : { policy: "skip" } };
    submit.disabled = true;
    try {
      const made = await app.http.post<Schedule>(PATH, body);
      const first = made.next_runs[0];
      app.toast(first ? `${made.name} added; next run ${when(first.ms)}.` : `${made.name} added.`);
      name.value = "";
      await added();
    } catch (err) {
      error.textContent = (err as Error).message;
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}
