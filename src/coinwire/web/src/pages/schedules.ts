// Schedules: the user's scheduled jobs (cron or every, in a time zone) with their next runs, and a form to add one.

import type { App } from "../app";
import type { Runnable, RunSummary, Schedule, ScheduleJob } from "../api/types";
import * as fmt from "../format";
import { prefs } from "../prefs";
import { ZONES } from "./markets";
import { toSeconds } from "../ui/series";
import { Disposer, fill, h, placeholder } from "../ui/dom";

const PATH = "/api/v1/schedules";
const NEXT_SHOWN = 5;
const JOB_KINDS: [string, string][] = [
  ["retrieve_rates", "Retrieve rates"],
  ["run_strategy", "Run a strategy for a period"],
  ["strategy_step", "A running strategy's step"],
  ["housekeeping", "Housekeeping"],
];

export function schedulesPage(app: App, _p: Record<string, string>, d: Disposer): HTMLElement {
  const list = h("div", { "data-testid": "schedules-list" }, placeholder("loading", "Loading schedules…"));
  const error = h("p", { class: "error", role: "alert", "data-testid": "schedules-error" });
  const load = async (): Promise<void> => {
    try {
      const schedules = await app.http.get<Schedule[]>(PATH);
      fill(list, schedules.length ? schedulesTable(app, schedules, load, error) : placeholder("empty", "No schedules yet: add one below."));
    } catch (e) {
      fill(list, placeholder("error", `Schedules could not be read: ${(e as Error).message}`));
    }
  };
  void load();
  d.every(30_000, () => void load()); // the next runs move on
  return h("div", { class: "page schedules" },
    h("section", { class: "card" }, h("h3", {}, "Schedules"), error, list),
    addForm(app, load));
}

/** A time the API gives (ISO, or unix seconds or milliseconds) as the user reads it, in their zone. */
function when(t: string | number): string {
  return fmt.time(typeof t === "number" ? toSeconds(t) : t);
}

/** "*\/5 * * * *" or "every 1m": what the schedule's times are made of. */
function specOf(s: Schedule): string {
  return s.cron ? s.cron : s.every ? `every ${s.every}` : "–";
}

function stateOf(s: Schedule): "active" | "paused" {
  return s.state === "paused" || s.paused === true ? "paused" : "active";
}

/** One line on what the job does: its kind and the fields that say which strategy, run or step. */
export function jobSummary(job: ScheduleJob): string {
  const label = JOB_KINDS.find(([k]) => k === job.kind)?.[1] ?? job.kind;
  const s = (k: string) => (job[k] === undefined || job[k] === null || job[k] === "" ? "" : String(job[k]));
  if (job.kind === "run_strategy") return [label, s("strategy"), s("period") && `for ${s("period")}`].filter(Boolean).join(" · ");
  if (job.kind === "strategy_step") return [label, s("run_id") || s("run"), s("step") && `step ${s("step")}`].filter(Boolean).join(" · ");
  if (job.kind === "retrieve_rates") {
    const where = [s("exchange"), Array.isArray(job.symbols) ? (job.symbols as unknown[]).join(", ") : s("symbols")].filter(Boolean).join(" ");
    return where ? `${label} · ${where}` : `${label} · every market with a running feed`;
  }
  return label;
}

/** The last run's outcome as the API gives it: a word, or an object with a status (and when, and why). */
function outcomeOf(s: Schedule): { text: string; cls: string; title: string } {
  const o = s.last_outcome ?? s.last_run ?? null;
  if (o === null || o === undefined || o === "") return { text: "not run yet", cls: "", title: "" };
  if (typeof o !== "object") return { text: String(o), cls: String(o), title: "" };
  const r = o as Record<string, unknown>;
  const status = String(r.outcome ?? r.status ?? r.state ?? "");
  const at = r.at ?? r.finished_at ?? r.ran_at ?? r.tick_at ?? r.tick ?? null;
  const why = r.error ?? r.message ?? r.detail ?? "";
  const text = [status, at !== null ? when(at as string | number) : ""].filter(Boolean).join(" · ");
  return { text: text || "–", cls: status, title: String(why ?? "") };
}

function schedulesTable(app: App, schedules: Schedule[], reload: () => Promise<void>, error: HTMLElement): HTMLElement {
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
    const id = encodeURIComponent(String(s.id));
    const state = stateOf(s);
    const outcome = outcomeOf(s);
    const next = (s.next_runs ?? []).slice(0, NEXT_SHOWN);
    const toggle = h("button", { type: "button", class: "ghost", "data-action": state === "paused" ? "resume" : "pause",
      onclick: () => void act(state === "paused" ? "Resume" : "Pause", () => app.http.post(`${PATH}/${id}/${state === "paused" ? "resume" : "pause"}`),
        `${s.name} ${state === "paused" ? "resumed" : "paused"}.`) }, state === "paused" ? "Resume" : "Pause");
    const remove = h("button", { type: "button", class: "ghost danger", "data-action": "remove", onclick: async () => {
      if (!(await app.confirm(`Remove ${s.name}?`, "The schedule stops and is deleted; runs it started are kept.", "Remove"))) return;
      await act("Remove", () => app.http.delete(`${PATH}/${id}`), `${s.name} removed.`);
    } }, "Remove");
    return h("tr", { "data-testid": "schedule-row", "data-schedule": String(s.id) },
      h("td", {}, s.name),
      h("td", {}, h("span", { class: "mono", "data-testid": "schedule-spec" }, specOf(s)),
        s.misfire?.policy === "catch_up" ? h("div", { class: "muted why" }, `catches up at most ${s.misfire.limit ?? "?"} missed`) : null),
      h("td", {}, s.timezone),
      h("td", { "data-testid": "schedule-job" }, jobSummary(s.job)),
      h("td", {}, h("span", { class: `badge ${state === "active" ? "running" : "stopped"}`, "data-testid": "schedule-state" }, state)),
      h("td", { "data-testid": "schedule-next" }, next.length
        ? h("ol", { class: "next-runs" }, ...next.map((t) => h("li", {}, when(t))))
        : h("span", { class: "muted" }, state === "paused" ? "paused" : "none")),
      h("td", { title: outcome.title, "data-testid": "schedule-outcome" }, h("span", { class: `badge ${outcome.cls}` }, outcome.text),
        outcome.title ? h("div", { class: "muted why" }, outcome.title) : null),
      h("td", {}, h("div", { class: "row nowrap" }, toggle, remove)));
  });
  return h("div", { class: "table-wrap" }, h("table", { class: "grid" },
    h("thead", {}, h("tr", {}, ...["Name", "Spec", "Time zone", "Job", "State", `Next runs (${prefs.value.tz})`, "Last outcome", ""].map((t) => h("th", {}, t)))),
    h("tbody", {}, ...rows)));
}

/** The job's own fields for each kind, and how to read them into the job object (or why they cannot be sent). */
function jobFields(app: App): { el: HTMLElement; kind: HTMLSelectElement; read: () => ScheduleJob | string } {
  const kind = h("select", { name: "job_kind", "aria-label": "job kind" }, ...JOB_KINDS.map(([k, label]) => h("option", { value: k }, label)));
  const strategy = h("select", { name: "strategy", "aria-label": "strategy" });
  const period = h("input", { name: "period", "aria-label": "period", placeholder: "e.g. 1d, 7d, 4h", autocomplete: "off" });
  const run = h("select", { name: "run", "aria-label": "run" });
  const step = h("input", { name: "step", "aria-label": "step name", placeholder: "the strategy's scheduled step", autocomplete: "off" });
  const groups: Record<string, HTMLElement[]> = {
    run_strategy: [h("label", {}, "Strategy", strategy), h("label", {}, "Period", period)],
    strategy_step: [h("label", {}, "Run", run), h("label", {}, "Step", step)],
    retrieve_rates: [h("p", { class: "muted wide" }, "Stores one rate a minute for every market with a running feed.")],
    housekeeping: [h("p", { class: "muted wide" }, "The server's own clean-up, on your schedule.")],
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
      if (kind.value === "run_strategy") {
        if (!strategy.value) return "Choose a strategy to run.";
        if (!period.value.trim()) return "Give the period the strategy runs for (e.g. 1d).";
        return { kind: kind.value, strategy: strategy.value, period: period.value.trim() };
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
  const name = h("input", { name: "name", "aria-label": "name", placeholder: "e.g. rates every minute", autocomplete: "off", required: true });
  const how = h("select", { name: "how", "aria-label": "repeat by" }, h("option", { value: "cron" }, "Cron expression"), h("option", { value: "every" }, "Every (interval)"));
  const spec = h("input", { name: "spec", "aria-label": "cron or interval", class: "mono", value: "*/5 * * * *", autocomplete: "off" });
  const zones = [...new Set([prefs.value.tz, ...ZONES])];
  const tz = h("select", { name: "timezone", "aria-label": "time zone" }, ...zones.map((z) => h("option", { value: z, selected: z === prefs.value.tz }, z)));
  const policy = h("select", { name: "misfire", "aria-label": "misfire policy" },
    h("option", { value: "skip" }, "Skip missed runs"), h("option", { value: "catch_up" }, "Catch up missed runs"));
  const limit = h("input", { name: "limit", "aria-label": "catch-up limit", type: "number", min: 1, max: 1000, value: 3 });
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
    !app.can("manage", "run") ? h("p", { class: "muted" }, `Your role (${app.abilities.value?.user.role ?? "?"}) may look at schedules; the server decides whether it may add them.`) : null,
    error, submit);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.textContent = "";
    if (!name.value.trim()) return void (error.textContent = "Give the schedule a name.");
    if (!spec.value.trim()) return void (error.textContent = how.value === "cron" ? "Give a cron expression, e.g. */5 * * * *." : "Give an interval, e.g. 1m.");
    const j = job.read();
    if (typeof j === "string") return void (error.textContent = j);
    const body: Record<string, unknown> = { name: name.value.trim(), [how.value]: spec.value.trim(), timezone: tz.value, job: j,
      misfire: policy.value === "catch_up" ? { policy: "catch_up", limit: Math.max(1, Math.round(Number(limit.value) || 1)) } : { policy: "skip" } };
    submit.disabled = true;
    try {
      const made = await app.http.post<Schedule>(PATH, body);
      const first = made.next_runs?.[0];
      app.toast(first !== undefined ? `${made.name} added; next run ${when(first)}.` : `${made.name} added.`);
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
