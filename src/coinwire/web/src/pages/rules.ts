// Rules: the user's rule sets with their live state (armed, peak, trigger, distance) and firing history, a one-click
// portfolio trailing stop and a form to build any rule set; enabling a live close-everything asks first.

import type { App } from "../app";
import { channels } from "../api/rpc";
import { RULESETS, listRuleSets, ruleFirings } from "../api/rules";
import type { RuleFiring, RulePart, RuleSet } from "../api/types";
import * as fmt from "../format";
import { parseScopeKey, scopeKey, type ScopeRef } from "../portfolio";
import { prefs } from "../prefs";
import {
  ACTION_KINDS, OPS, analysisFigure, privateKey, RULE_KINDS, describe, kindSpec, needsConfirm, partFromFields, ruleSetBody, ruleStates, stateWord,
  trailingStopPreset, type KindSpec,
} from "../rules";
import { Disposer, fill, h, placeholder } from "../ui/dom";
import { choices, userScope, type Choice } from "./portfolio";

const POLL_MS = 3_000; // the live state (peak, trigger, distance) moves with every portfolio sample

export function rulesPage(app: App, _p: Record<string, string>, d: Disposer): HTMLElement {
  let selected: number | null = null;
  let sets: RuleSet[] = [];
  let scopes: Choice[] = [{ ref: userScope(app), label: "All my holdings (total)", group: "Total" }];
  const error = h("p", { class: "error", role: "alert", "data-testid": "rules-error" });
  const list = h("div", { "data-testid": "rule-sets" }, placeholder("loading", "Loading rule sets…"));
  const history = h("section", { class: "card", "data-testid": "rule-firings-card", hidden: true });
  const scopeLabel = (rs: RuleSet): string => {
    const ref: ScopeRef = { scope: rs.scope, id: rs.scope_id ?? String(rs.owner_id) };
    return scopes.find((c) => scopeKey(c.ref) === scopeKey(ref))?.label ?? `${rs.scope.replace("_", " ")} ${rs.scope_id ?? ""}`.trim();
  };

  const load = async (): Promise<void> => {
    try {
      sets = await listRuleSets(app.http);
      fill(list, sets.length ? table() : placeholder("empty", app.can("manage", "rule_set")
        ? "No rule sets yet: add a trailing stop in one click below, or build one." : "No rule sets."));
      list.dataset.loaded = String(Date.now());
    } catch (e) {
      fill(list, placeholder("error", `Rule sets could not be read: ${(e as Error).message}`));
    }
    if (selected !== null) void showFirings(selected);
  };

  const act = async (what: string, run: () => Promise<unknown>, done: string): Promise<void> => {
    error.textContent = "";
    try {
      await run();
      app.toast(done);
    } catch (e) {
      error.textContent = `${what}: ${(e as Error).message}`;
    }
    await load();
  };

  const enable = async (rs: RuleSet): Promise<void> => {
    const body: Record<string, unknown> = {};
    if (needsConfirm(rs)) {
      if (!(await confirmClose(app, rs.name, scopeLabel(rs)))) return;
      body.confirm = true;
    }
    await act("Enable", () => app.http.post(`${RULESETS}/${rs.id}/enable`, body), `${rs.name} enabled.`);
  };

  const manage = app.can("manage", "rule_set");
  const table = (): HTMLElement => {
    const rows = sets.map((rs) => {
      const word = stateWord(rs);
      const toggle = rs.enabled
        ? h("button", { type: "button", class: "ghost", "data-action": "disable",
          onclick: () => void act("Disable", () => app.http.post(`${RULESETS}/${rs.id}/disable`), `${rs.name} disabled.`) }, "Disable")
        : h("button", { type: "button", class: "ghost", "data-action": "enable", onclick: () => void enable(rs) }, "Enable");
      const remove = h("button", { type: "button", class: "ghost danger", "data-action": "delete", onclick: async () => {
        if (!(await app.confirm(`Delete ${rs.name}?`, "The rule set stops acting; its firings are deleted with it.", "Delete"))) return;
        if (selected === rs.id) selected = null, (history.hidden = true);
        await act("Delete", () => app.http.delete(`${RULESETS}/${rs.id}`), `${rs.name} deleted.`);
      } }, "Delete");
      const show = h("button", { type: "button", class: "ghost", "data-action": "firings",
        onclick: () => { selected = rs.id; void showFirings(rs.id); } }, "Firings");
      return h("tr", { "data-testid": "rule-set-row", "data-rule-set": String(rs.id), "data-state": word },
        h("td", { "data-label": "Name" }, rs.name, rs.mode === "dry_run" ? [" ", h("span", { class: "badge" }, "dry run")] : null),
        h("td", { "data-label": "Scope" }, scopeLabel(rs)),
        h("td", { "data-label": "Rules" }, h("ul", { class: "plain" }, ...rs.rules.map((r) => h("li", {}, describe(r))))),
        h("td", { "data-label": "Actions" }, h("ol", { class: "plain" }, ...rs.actions.map((a) => h("li", {}, describe(a))))),
        h("td", { "data-label": "State" }, h("span", { class: `badge ${badgeClass(word)}`, "data-testid": "rule-set-state" }, word),
          rs.after === "rearm" ? h("div", { class: "muted why" }, `re-arms after ${rs.cooldown ?? "?"}`) : null),
        h("td", { "data-label": "Live", "data-testid": "rule-set-live" }, liveState(rs)),
        h("td", {}, h("div", { class: "row nowrap" }, manage ? toggle : null, show, manage ? remove : null)));
    });
    return h("div", { class: "table-wrap" }, h("table", { class: "grid stack rule-sets" },
      h("thead", {}, h("tr", {}, ...["Name", "Scope", "Rules (all hold)", "Actions (in order)", "State", "Live", ""].map((t) => h("th", {}, t)))),
      h("tbody", {}, ...rows)));
  };

  const showFirings = async (id: number): Promise<void> => {
    const rs = sets.find((s) => s.id === id);
    if (!rs) return void (history.hidden = true);
    history.hidden = false;
    if (history.dataset.ruleSet !== String(id)) {
      const portfolio = `/app/portfolio?scope=${encodeURIComponent(rs.scope)}&id=${encodeURIComponent(rs.scope_id ?? String(rs.owner_id))}`;
      fill(history, h("h3", {}, `Firings of ${rs.name}`),
        h("p", { class: "muted" }, "Each firing: the values that made every rule hold, and what each action did. ",
          h("a", { href: portfolio, "data-link": true, "data-testid": "firings-on-chart" }, "See them on the portfolio chart")),
        h("div", { "data-testid": "rule-firings" }, placeholder("loading", "Loading firings…")));
      history.dataset.ruleSet = String(id);
    }
    const target = history.querySelector<HTMLElement>("[data-testid=rule-firings]")!;
    try {
      const firings = await ruleFirings(app.http, id);
      fill(target, firings.length ? firingsTable(firings) : placeholder("empty", "It has not fired yet."));
    } catch (e) {
      fill(target, placeholder("error", `Firings could not be read: ${(e as Error).message}`));
    }
  };

  void load();
  d.every(POLL_MS, () => void load());
  if (app.abilities.value?.channels.includes("rule_fired")) {
    d.add(app.rpc.keep(channels(["rule_fired"])));
    d.add(app.rpc.on("rule_fired", (p: { rule_set_id?: number; name?: string; firing?: { mode?: string } }) => {
      const name = p.name ?? sets.find((s) => s.id === p.rule_set_id)?.name ?? "A rule set";
      app.toast(`${name} fired${p.firing?.mode === "dry_run" ? " (dry run: nothing traded)" : ""}.`);
      void load();
    }));
  }
  const form = builder(app, load);
  const preset = presetCard(app, load);
  void choices(app, true).then((all) => {
    scopes = all;
    form.setScopes(all);
    preset.setScopes(all);
    if (sets.length) fill(list, table());
  });
  return h("div", { class: "page rules" },
    h("section", { class: "card" }, h("h3", {}, "Rule sets"),
      h("p", { class: "muted" }, "A rule set watches a portfolio; when all its rules hold, its actions run in order. Dry-run sets record and notify only."),
      manage ? null : h("p", { class: "muted", "data-testid": "rules-read-only" },
        `Your role (${app.abilities.value?.user.role ?? "?"}) lists rule sets; making and arming them is for traders.`),
      error, list),
    history,
    manage ? preset.el : null,
    manage ? form.el : null);
}

function badgeClass(word: string): string {
  return word === "armed" ? "warning" : word === "fired" ? "done" : word === "disabled" ? "stopped" : "running";
}

/** A portfolio value as the page shows it (hidden when masking). */
function money(v: string | null): string {
  return v === null ? "–" : prefs.value.mask ? fmt.MASK : fmt.fixed(v, prefs.value.stableDecimals);
}

/** Per rule: armed or not, its peak, trigger and the distance to it (the server's `status`); a line per rule. */
function liveState(rs: RuleSet): HTMLElement {
  const states = ruleStates(rs);
  return h("div", { class: "rule-live" }, ...states.map((s) => {
    const bits: (HTMLElement | string)[] = [];
    if (s.armed !== null) bits.push(h("span", { class: `badge ${s.armed ? "warning" : ""}`, "data-testid": "rule-armed" }, s.armed ? "armed" : "not armed"));
    if (s.holds !== null && s.armed === null) bits.push(h("span", { class: `badge ${s.holds ? "warning" : ""}` }, s.holds ? "holds" : "does not hold"));
    const kv = (label: string, value: string, id: string) => h("span", { class: "kv", "data-testid": id }, h("span", { class: "muted" }, label), " ", value);
    if (s.kind === "indicator") {
      // the analyser's current value of the key the rule reads (the controller's status), not a portfolio value
      const own = s.indicator !== null && privateKey(s.indicator); // money of the user's: shown and masked as money
      bits.push(h("span", { class: "kv", "data-testid": "rule-indicator", title: s.indicator ?? "" }, h("span", { class: "muted" }, s.indicator ?? "indicator"), " ",
        h("span", { "data-testid": "rule-indicator-value" }, s.indicatorValue === null ? "no value yet" : own ? money(s.indicatorValue) : analysisFigure(s.indicatorValue))));
      if (s.comparedTo !== null) bits.push(kv("against", s.comparedTo, "rule-compared-to"));
    } else if (s.value !== null) bits.push(kv("value", money(s.value), "rule-value"));
    if (s.armed === false && s.armLevel !== null) bits.push(kv("arms at", money(s.armLevel), "rule-arm-level"));
    if (s.level !== null) bits.push(kv("level", money(s.level), "rule-level"));
    if (s.peak !== null) bits.push(kv("peak", money(s.peak), "rule-peak"));
    if (s.trigger !== null) bits.push(kv("trigger", money(s.trigger), "rule-trigger"));
    if (s.distancePct !== null) bits.push(kv("to trigger", `${s.distancePct.toFixed(2)}%`, "rule-distance"));
    return h("div", { class: "row wrap" }, ...(bits.length ? bits : [h("span", { class: "muted" }, rs.enabled ? "no sample yet" : "–")]));
  }));
}

function firingsTable(firings: RuleFiring[]): HTMLElement {
  return h("div", { class: "table-wrap" }, h("table", { class: "grid stack" },
    h("thead", {}, h("tr", {}, ...["Time", "Mode", "Values", "Actions"].map((t) => h("th", {}, t)))),
    h("tbody", {}, ...firings.map((f) => h("tr", { "data-testid": "rule-firing-row" },
      h("td", { "data-label": "Time" }, fmt.time(f.time)),
      h("td", { "data-label": "Mode" }, f.mode === "dry_run" ? "dry run" : f.mode),
      h("td", { "data-label": "Values", "data-testid": "firing-values" }, h("span", { class: "mono" },
        Object.entries(f.values ?? {}).map(([k, v]) => `${k.replace("_", " ")} ${firingValue(k, v)}`).join(" · "))),
      h("td", { "data-label": "Actions" }, h("ol", { class: "plain" }, ...(f.actions ?? []).map((a) =>
        h("li", {}, `${a.kind} `, h("span", { class: `badge ${a.status}`, "data-testid": "firing-action-status" }, a.status),
          a.detail && typeof a.detail === "object" && Object.keys(a.detail).length
            ? h("div", { class: "muted why mono" }, JSON.stringify(a.detail)) : null)))))))));
}

/** A firing's recorded value: portfolio values at the user's decimals (hidden when masking), percentages and names as recorded. */
function firingValue(key: string, v: string): string {
  if (key.endsWith("_pct")) return `${fmt.fixed(v, 2)}%`;
  if (!["value", "reference", "peak", "trigger", "arm_level", "level"].includes(key) || !Number.isFinite(Number(v))) return v;
  return money(v);
}

/** The dialog before a live rule set that sells everything is switched on. */
function confirmClose(app: App, name: string, scope: string): Promise<boolean> {
  return app.confirm(`Enable ${name}?`,
    h("div", {}, h("p", {}, `When it fires, every holding of ${scope} is sold at market and every perpetual position closed.`),
      h("p", { class: "muted" }, "This trades for real on live accounts. Use dry run to see first what it would do.")),
    "Enable and arm");
}

function scopeSelect(name: string): { el: HTMLSelectElement; set: (all: Choice[]) => void; ref: () => ScopeRef | null } {
  const el = h("select", { name, "aria-label": "scope", "data-testid": `${name}-scope` }, h("option", { value: "" }, "loading…"));
  return {
    el,
    set: (all) => {
      const was = el.value;
      const groups = [...new Set(all.map((c) => c.group))];
      fill(el, ...groups.map((g) => h("optgroup", { label: g },
        ...all.filter((c) => c.group === g).map((c) => h("option", { value: scopeKey(c.ref), selected: scopeKey(c.ref) === was }, c.label)))));
    },
    ref: () => parseScopeKey(el.value),
  };
}

/** Create a rule set, asking first when it would be enabled live with a close-everything; true when it was made. */
async function create(app: App, body: Record<string, unknown>, scope: string): Promise<boolean> {
  if (body.enabled && needsConfirm({ mode: String(body.mode), actions: body.actions as RulePart[] })) {
    if (!(await confirmClose(app, String(body.name), scope))) return false;
    body.confirm = true;
  }
  const made = await app.http.post<RuleSet>(RULESETS, body);
  app.toast(`${made.name} added${made.enabled ? " and enabled" : ""}.`);
  return true;
}

/** One click: a trailing stop on a scope with its two percentages, selling everything when it fires. */
function presetCard(app: App, added: () => Promise<void>): { el: HTMLElement; setScopes: (all: Choice[]) => void } {
  const scope = scopeSelect("preset");
  const arm = h("input", { name: "arm_pct", "aria-label": "arm after a rise of (%)", inputmode: "decimal", value: "10", autocomplete: "off" });
  const trail = h("input", { name: "trail_pct", "aria-label": "sell on a fall from the peak of (%)", inputmode: "decimal", value: "5", autocomplete: "off" });
  const error = h("p", { class: "error", role: "alert", "data-testid": "preset-error" });
  const button = h("button", { type: "submit", class: "primary", "data-testid": "preset-trailing-stop" }, "Add trailing stop");
  const el = h("form", { class: "card", "aria-label": "portfolio trailing stop", "data-testid": "preset-form" },
    h("h3", {}, "Portfolio trailing stop"),
    h("p", { class: "muted" }, "Armed once the portfolio has risen by the first percentage from its value now; then, when it falls by the second from its peak, everything is sold."),
    h("div", { class: "form-grid" }, h("label", {}, "Portfolio", scope.el), h("label", {}, "Arm after a rise of (%)", arm),
      h("label", {}, "Sell on a fall from the peak of (%)", trail)),
    error, button);
  el.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.textContent = "";
    const ref = scope.ref();
    if (!ref) return void (error.textContent = "Choose the portfolio it protects.");
    const preset = trailingStopPreset(arm.value, trail.value);
    if (typeof preset === "string") return void (error.textContent = preset);
    const body = ruleSetBody({ name: `Trailing stop +${arm.value.trim()}% / -${trail.value.trim()}%`, scope: ref, mode: "live", after: "once",
      cooldown: "", enabled: true, ...preset });
    if (typeof body === "string") return void (error.textContent = body);
    button.disabled = true;
    try {
      if (await create(app, body, scope.el.selectedOptions[0]?.textContent ?? ref.scope)) await added();
    } catch (err) {
      error.textContent = (err as Error).message;
    } finally {
      button.disabled = false;
    }
  });
  return { el, setScopes: scope.set };
}

/** A rule or action editor: its kind and that kind's fields; `read` answers its JSON part or what is wrong. */
function partEditor(kinds: KindSpec[], testid: string, remove: () => void): { el: HTMLElement; read: () => RulePart | string } {
  const kind = h("select", { "aria-label": `${testid} kind`, "data-testid": `${testid}-kind` }, ...kinds.map((k) => h("option", { value: k.kind }, k.label)));
  const fields = h("div", { class: "form-grid" });
  let inputs: Record<string, HTMLInputElement | HTMLSelectElement> = {};
  const draw = () => {
    const spec = kindSpec(kinds, kind.value)!;
    inputs = {};
    fill(fields, ...spec.fields.map((f) => {
      const input = f.type === "op"
        ? h("select", { name: f.name }, ...OPS.map((o) => h("option", { value: o, selected: o === f.initial }, o.replace("_", " "))))
        : f.type === "bool"
          ? h("select", { name: f.name }, h("option", { value: "true", selected: f.initial === "true" }, "yes"), h("option", { value: "false", selected: f.initial !== "true" }, "no"))
          : h("input", { name: f.name, value: f.initial ?? "", placeholder: f.placeholder ?? "", autocomplete: "off",
            inputmode: f.type === "decimal" ? "decimal" : null, class: f.type === "text" ? "" : "mono" });
      inputs[f.name] = input;
      return h("label", {}, f.label, input);
    }), spec.fields.length ? null : h("p", { class: "muted wide" }, "Nothing to set."));
  };
  kind.addEventListener("change", draw);
  draw();
  const el = h("div", { class: "rule-part", "data-testid": testid },
    h("div", { class: "row" }, kind, h("button", { type: "button", class: "ghost danger", "aria-label": `remove this ${testid}`, onclick: () => { el.remove(); remove(); } }, "Remove")),
    fields);
  return {
    el,
    read: () => partFromFields(kindSpec(kinds, kind.value)!, Object.fromEntries(Object.entries(inputs).map(([k, i]) => [k, i.value]))),
  };
}

/** The full form: name, scope, mode, policy after firing; rules (all must hold) and actions (run in order). */
function builder(app: App, added: () => Promise<void>): { el: HTMLElement; setScopes: (all: Choice[]) => void } {
  const name = h("input", { name: "name", "aria-label": "name", placeholder: "e.g. protect my gains", autocomplete: "off" });
  const scope = scopeSelect("builder");
  const mode = h("select", { name: "mode", "aria-label": "mode" }, h("option", { value: "live" }, "live: act"), h("option", { value: "dry_run" }, "dry run: record and notify only"));
  const after = h("select", { name: "after", "aria-label": "after firing" }, h("option", { value: "once" }, "fire once"), h("option", { value: "rearm" }, "re-arm after a cooldown"));
  const cooldown = h("input", { name: "cooldown", "aria-label": "cooldown", placeholder: "e.g. 1h", autocomplete: "off" });
  const cooldownLabel = h("label", {}, "Cooldown", cooldown);
  const enabled = h("input", { type: "checkbox", name: "enabled", checked: true });
  after.addEventListener("change", () => (cooldownLabel.hidden = after.value !== "rearm"));
  cooldownLabel.hidden = true;
  const rules: { read: () => RulePart | string }[] = [];
  const actions: { read: () => RulePart | string }[] = [];
  const rulesBox = h("div", { "data-testid": "builder-rules" });
  const actionsBox = h("div", { "data-testid": "builder-actions" });
  const addTo = (kinds: KindSpec[], box: HTMLElement, into: { read: () => RulePart | string }[], testid: string) => {
    const ed = partEditor(kinds, testid, () => into.splice(into.indexOf(ed), 1));
    into.push(ed);
    box.append(ed.el);
  };
  addTo(RULE_KINDS, rulesBox, rules, "rule");
  addTo(ACTION_KINDS, actionsBox, actions, "action");
  const error = h("p", { class: "error", role: "alert", "data-testid": "builder-error" });
  const submit = h("button", { type: "submit", class: "primary", "data-testid": "builder-submit" }, "Add rule set");
  const el = h("form", { class: "card", "aria-label": "build a rule set", "data-testid": "builder-form" },
    h("h3", {}, "Build a rule set"),
    h("div", { class: "form-grid" }, h("label", {}, "Name", name), h("label", {}, "Portfolio", scope.el), h("label", {}, "Mode", mode),
      h("label", {}, "After firing", after), cooldownLabel, h("label", { class: "check" }, enabled, " Enabled")),
    h("h4", {}, "Rules: all must hold"), rulesBox,
    h("button", { type: "button", class: "ghost", "data-testid": "add-rule", onclick: () => addTo(RULE_KINDS, rulesBox, rules, "rule") }, "+ Rule"),
    h("h4", {}, "Actions: run in order"), actionsBox,
    h("button", { type: "button", class: "ghost", "data-testid": "add-action", onclick: () => addTo(ACTION_KINDS, actionsBox, actions, "action") }, "+ Action"),
    error, submit);
  el.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.textContent = "";
    const ref = scope.ref();
    if (!ref) return void (error.textContent = "Choose the portfolio it watches.");
    const parts = [...rules, ...actions].map((p) => p.read());
    const wrong = parts.find((p): p is string => typeof p === "string");
    if (wrong) return void (error.textContent = wrong);
    const body = ruleSetBody({ name: name.value, scope: ref, mode: mode.value as "live" | "dry_run", after: after.value as "once" | "rearm",
      cooldown: cooldown.value, enabled: enabled.checked, rules: parts.slice(0, rules.length) as RulePart[], actions: parts.slice(rules.length) as RulePart[] });
    if (typeof body === "string") return void (error.textContent = body);
    submit.disabled = true;
    try {
      if (await create(app, body, scope.el.selectedOptions[0]?.textContent ?? ref.scope)) {
        name.value = "";
        await added();
      }
    } catch (err) {
      error.textContent = (err as Error).message;
    } finally {
      submit.disabled = false;
    }
  });
  return { el, setScopes: scope.set };
}
