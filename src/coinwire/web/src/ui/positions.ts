// Perpetual positions panels: the live positions table (reduce, close, isolated margin), a market's leverage and margin-mode controls, funding history.

import type { App } from "../app";
import { ApiError } from "../api/http";
import { channels } from "../api/rpc";
import type { Account, FundingEntry, Market, PositionView } from "../api/types";
import * as D from "../decimal";
import { MASK } from "../format";
import * as P from "../positions";
import { prefs } from "../prefs";
import { Disposer, Signal, fill, h, placeholder } from "./dom";

/**
 * The shown account's positions: read with `get_positions`, then kept by `positions_updated` pushes
 * (mark, uPnL, margin ratio and liquidation price move with the mark), read again on every (re)connection
 * so nothing missed while disconnected stays wrong. Null until the first answer.
 */
export interface LivePositions {
  list: Signal<PositionView[] | null>;
  error: Signal<string>;
  /** Hedge mode as last set from this page (null: not set here; the positions' legs tell). */
  hedge: Signal<boolean | null>;
  reload: () => Promise<void>;
}

/**
 * The accounts whose pushes a connection must ask for by id: a connection follows the user's own
 * accounts (an admin's, every one) without it, but an account granted to the user only when named.
 */
function granted(app: App): number[] {
  const chosen = app.accounts.chosen.value;
  return (chosen ? [chosen] : app.accounts.list.value).filter((a) => a.role === "view" || a.role === "trade").map((a) => a.id);
}

export function livePositions(app: App, d: Disposer): LivePositions {
  const list = new Signal<PositionView[] | null>(null);
  const error = new Signal("");
  const hedge = new Signal<boolean | null>(null);
  const reload = async () => {
    try {
      list.set(P.openPositions(await app.rpc.call<PositionView[]>("get_positions", app.accounts.scope())));
      error.set("");
    } catch (e) {
      error.set((e as Error).message);
    }
  };
  const standing = channels(["positions_updated"]);
  d.add(app.rpc.keep({
    open: async (rpc) => {
      await standing.open(rpc);
      for (const account of granted(app)) await rpc.call("subscribe", { channels: ["positions_updated"], account });
      await reload();
    },
    close: (rpc) => standing.close!(rpc),
  }));
  d.add(app.rpc.on("positions_updated", (p: PositionView) => {
    if (!app.accounts.shows(p.account) || list.value === null) return;
    list.set(P.mergePosition(list.value, p));
  }));
  return { list, error, hedge, reload };
}

/** Who may change a position: a trader on an account they own or trade (a viewer, or a view grant, sees it only). */
export function mayTrade(app: App, account: Account | number | null | undefined): boolean {
  if (!app.can("trade", "order")) return false;
  const a = typeof account === "number" ? app.accounts.byId(account) : account;
  return !a || a.role !== "view";
}

const priceDecimals = (app: App, p: { exchange: string; symbol: string }) => D.decimalsOf(app.market(p.exchange, p.symbol)?.tick ?? "0.01");

/** The answer line every control writes to: what was done, or the server's refusal in its words (its code on hover). */
function answerLine(testid: string): { el: HTMLElement; ok: (t: string) => void; fail: (e: unknown) => void } {
  const el = h("p", { class: "result", role: "status", "data-testid": testid });
  return {
    el,
    ok: (t) => { el.className = "result ok"; el.textContent = t; el.title = ""; },
    fail: (e) => {
      const a = e as ApiError;
      el.className = "result error";
      el.textContent = `Refused: ${a.message}`;
      el.title = String(a.data?.reason ?? a.code ?? "");
    },
  };
}

/** The positions table; `only` narrows it to one market (the Trade page's). */
export function positionsPanel(app: App, d: Disposer, live: LivePositions,
  only?: { exchange: string; symbol: string }): HTMLElement {
  const body = h("div", {});
  const answer = answerLine("positions-result");
  // rows are updated in place (a push comes with every mark move): a reduce amount being typed keeps its text and focus
  interface Drawn { tr: HTMLTableRowElement; ref: { p: PositionView }; data: HTMLElement[] }
  const drawn = new Map<string, Drawn>();
  let tbody: HTMLElement | null = null;
  let shape = "";
  const draw = () => {
    const all = live.list.value;
    const empty = (el: HTMLElement) => { shape = ""; fill(body, el); };
    if (all === null) return empty(live.error.value ? placeholder("error", `Positions: ${live.error.value}`) : placeholder("loading", "Loading positions…"));
    const rows = all.filter((p) => !only || (p.exchange === only.exchange && p.symbol === only.symbol));
    if (!rows.length) return empty(placeholder("empty", only ? `No open position on ${only.symbol}.` : "No open positions."));
    const several = app.accounts.several();
    const controls = rows.some((p) => mayTrade(app, p.account));
    if (`${several}|${controls}` !== shape || !tbody) {
      shape = `${several}|${controls}`;
      drawn.clear();
      tbody = h("tbody", {});
      fill(body, h("table", { class: "grid stack positions", "data-testid": "positions-table" },
        h("thead", {}, h("tr", {}, ...["Market", ...(several ? ["Account"] : []), "Side", "Size", "Entry", "Mark", "Notional", "uPnL (ROE)",
          "Realised", "Funding", "Margin", "Margin ratio", "Liq. price", ...(controls ? [""] : [])].map((t) => h("th", {}, t)))),
        tbody));
    }
    const keys = new Set(rows.map(P.positionKey));
    for (const [k, r] of drawn) if (!keys.has(k)) { r.tr.remove(); drawn.delete(k); }
    rows.forEach((p, i) => {
      const key = P.positionKey(p);
      let r = drawn.get(key);
      if (!r) {
        const data = cells(p, several);
        const ref = { p };
        const tr = h("tr", { "data-testid": "position-row", "data-key": key, "data-symbol": p.symbol }, ...data,
          controls ? h("td", {}, mayTrade(app, p.account) ? actions(ref) : "") : null);
        drawn.set(key, r = { tr, ref, data });
      } else {
        r.ref.p = p;
        const data = cells(p, several);
        r.data.forEach((td, j) => td.replaceWith(data[j]));
        r.data = data;
      }
      r.tr.dataset.side = p.side;
      if (tbody!.children[i] !== r.tr) tbody!.insertBefore(r.tr, tbody!.children[i] ?? null);
    });
  };
  const masked = (t: string) => (prefs.value.mask ? MASK : t);
  const cells = (p: PositionView, several: boolean): HTMLElement[] => {
    const r = P.positionRow(p, priceDecimals(app, p));
    const base = app.market(p.exchange, p.symbol)?.base ?? "";
    // one span per cell: at phone width a cell is a grid of its label and its content
    const td = (label: string, attrs: Record<string, string>, ...kids: (Node | string)[]) => h("td", { "data-label": label, ...attrs }, h("span", {}, ...kids));
    return [
      td("Market", {}, r.market, h("div", { class: "muted small" }, r.leg)),
      several ? td("Account", {}, app.accounts.short(p.account)) : null,
      td("Side", { class: r.side === "long" ? "buy" : "sell", "data-testid": "position-side" }, r.sideText),
      td("Size", { class: "num", "data-testid": "position-size" }, masked(`${r.size} ${base}`)),
      td("Entry", { class: "num" }, r.entry),
      td("Mark", { class: "num", "data-testid": "position-mark" }, r.mark),
      td("Notional", { class: "num" }, masked(r.notional)),
      td("uPnL (ROE)", { class: `num ${r.upnlClass}`, "data-testid": "position-upnl" }, masked(r.upnl), h("div", { class: "small" }, r.roe)),
      td("Realised", { class: "num" }, masked(r.realised)),
      td("Funding", { class: `num ${r.fundingClass}` }, masked(r.funding)),
      td("Margin", { "data-testid": "position-margin" }, masked(r.margin)),
      td("Margin ratio", { class: `num risk-${r.risk}`, "data-testid": "position-ratio" }, r.marginRatio),
      td("Liq. price", { class: "num", "data-testid": "position-liq" }, r.liquidation),
    ].filter((x): x is HTMLTableCellElement => x !== null);
  };
  /** A row's controls, made once; each acts on the row's position as it is now (`ref.p`, replaced by every push). */
  const actions = (ref: { p: PositionView }) => {
    const first = ref.p;
    const m = app.market(first.exchange, first.symbol);
    const step = m?.step ?? "0.001";
    const settle = m?.settle ?? m?.quote ?? "";
    const reduceIn = h("input", { name: "reduce", inputmode: "decimal", placeholder: m?.base ?? "amount", title: "amount to reduce by", "aria-label": "reduce by", autocomplete: "off" });
    const reduce = h("button", { type: "button", "data-testid": "position-reduce", onclick: async () => {
      const p = ref.p;
      const problem = P.reduceProblem(reduceIn.value, p, step, m?.base ?? "");
      if (problem) return answer.fail(new ApiError(0, "invalid_input", problem));
      const call = P.reduceCall(p, reduceIn.value);
      try {
        const o = await app.rpc.call<{ id: number; status: string; filled_size: string }>(call.method, call.params);
        answer.ok(`Reduced ${p.symbol}: order #${o.id} ${o.status}, ${o.filled_size} ${m?.base ?? ""} filled.`);
      } catch (e) { answer.fail(e); }
    } }, "Reduce");
    const close = h("button", { type: "button", class: "danger", "data-testid": "position-close", onclick: async () => {
      const p = ref.p;
      if (!(await app.confirm(`Close ${p.symbol}`, `A reduce-only market order for the whole ${p.side} position (${p.size} ${m?.base ?? ""}) at the market.`, "Close position"))) return;
      const call = P.closeCall(p);
      try {
        const o = await app.rpc.call<{ id: number; status: string }>(call.method, call.params);
        answer.ok(`Closing ${p.symbol}: order #${o.id} ${o.status}.`);
      } catch (e) { answer.fail(e); }
    } }, "Close");
    const cells: HTMLElement[] = [h("div", { class: "row nowrap" }, reduceIn, reduce, close)];
    if (first.margin_mode === "isolated") {
      const marginIn = h("input", { name: "margin", inputmode: "decimal", placeholder: `± ${settle}`, "aria-label": "margin change", autocomplete: "off" });
      cells.push(h("div", { class: "row nowrap" }, marginIn, h("button", { type: "button", "data-testid": "position-margin-apply", onclick: async () => {
        const p = ref.p;
        const problem = P.marginProblem(marginIn.value, p, settle);
        if (problem) return answer.fail(new ApiError(0, "invalid_input", problem));
        const call = P.marginCall(p, marginIn.value);
        try {
          await app.rpc.call(call.method, call.params);
          answer.ok(`Isolated margin of ${p.symbol} changed by ${marginIn.value.trim()} ${settle}.`);
          marginIn.value = "";
        } catch (e) { answer.fail(e); }
      } }, "Margin")));
    }
    return h("div", { class: "position-actions" }, ...cells);
  };
  d.add(live.list.watch(draw));
  d.add(live.error.watch(draw));
  d.add(prefs.watch(draw));
  return h("section", { class: "card", "data-testid": "positions" },
    h("h3", {}, only ? `Position · ${only.symbol}` : "Positions"), body, answer.el);
}

/**
 * Leverage and margin mode of one perpetual market on the ticket's account: the current values from its
 * position (a market without one shows the last value set here, else asks), the server's refusal as worded.
 */
export function leverageControls(app: App, d: Disposer, m: Market, account: Account | null, live: LivePositions): HTMLElement {
  const canChange = mayTrade(app, account);
  const levIn = h("input", { name: "leverage", inputmode: "numeric", placeholder: m.max_leverage ? `1–${m.max_leverage}` : "e.g. 10", "aria-label": "leverage", autocomplete: "off", disabled: !canChange });
  const mode = h("select", { name: "margin_mode", "aria-label": "margin mode", disabled: !canChange },
    h("option", { value: "cross" }, "Cross"), h("option", { value: "isolated" }, "Isolated"));
  const current = h("span", { class: "muted", "data-testid": "leverage-current" }, "");
  const posMode = h("select", { name: "position_mode", "aria-label": "position mode", disabled: !canChange },
    h("option", { value: "one-way" }, "One-way"), h("option", { value: "hedge" }, "Hedge (long and short legs)"));
  let posModeChosen = false, modeChosen = false; // a choice being made is not overwritten by a push
  mode.addEventListener("change", () => { modeChosen = true; });
  posMode.addEventListener("change", () => { posModeChosen = true; });
  const answer = answerLine("leverage-result");
  const accountId = () => account?.id ?? null;
  const show = (list: PositionView[] | null) => {
    const p = (list ?? []).find((x) => x.exchange === m.exchange && x.symbol === m.symbol && (account === null || x.account === account.id));
    current.textContent = p ? `now ${p.leverage}x · ${p.margin_mode}` : "";
    if (p && document.activeElement !== levIn && !levIn.value) levIn.value = String(p.leverage);
    if (p && !modeChosen) mode.value = p.margin_mode;
    // the positions' legs tell the mode until it is set here, unless the trader is choosing one
    if (live.hedge.value === null && !posModeChosen) posMode.value = P.hedgeModeOf(list ?? [], account?.id ?? null, m.exchange) ? "hedge" : "one-way";
  };
  d.add(live.list.watch(show));
  const setLev = h("button", { type: "button", "data-testid": "leverage-set", disabled: !canChange, onclick: async () => {
    const problem = P.leverageProblem(levIn.value, m.max_leverage);
    if (problem) return answer.fail(new ApiError(0, "invalid_input", problem));
    const call = P.leverageCall(m.exchange, m.symbol, levIn.value, accountId());
    try {
      await app.rpc.call(call.method, call.params);
      answer.ok(`Leverage on ${m.symbol} set to ${levIn.value.trim()}x.`);
      current.textContent = `now ${levIn.value.trim()}x · ${mode.value}`;
      await live.reload();
    } catch (e) { answer.fail(e); }
  } }, "Set leverage");
  const setMode = h("button", { type: "button", "data-testid": "margin-mode-set", disabled: !canChange, onclick: async () => {
    const call = P.marginModeCall(m.exchange, m.symbol, mode.value as "isolated" | "cross", accountId());
    try {
      await app.rpc.call(call.method, call.params);
      answer.ok(`Margin mode on ${m.symbol} set to ${mode.value}.`);
    } catch (e) { answer.fail(e); }
    modeChosen = false;
    await live.reload(); // refused: the position's mode shows again
  } }, "Set mode");
  const setPosMode = h("button", { type: "button", "data-testid": "position-mode-set", disabled: !canChange, onclick: async () => {
    const on = posMode.value === "hedge";
    const params: Record<string, unknown> = { exchange: m.exchange, hedge_mode: on };
    if (account) params.account = account.id;
    try {
      await app.rpc.call("set_position_mode", params);
      live.hedge.set(on);
      answer.ok(`Position mode on ${m.exchange}: ${on ? "hedge (long and short legs)" : "one-way"}.`);
    } catch (e) {
      answer.fail(e);
      posMode.value = on ? "one-way" : "hedge"; // refused: the mode it still is
    }
  } }, "Set");
  return h("section", { class: "card leverage", "data-testid": "leverage" },
    h("h3", {}, `Leverage · ${m.symbol}`), current,
    canChange ? null : h("p", { class: "muted" }, "You may view this account's positions, not change them."),
    h("div", { class: "row" }, h("label", {}, "Leverage (x)", levIn), setLev),
    h("div", { class: "row" }, h("label", {}, "Margin mode", mode), setMode),
    h("div", { class: "row" }, h("label", {}, `Position mode on ${m.exchange}`, posMode), setPosMode),
    answer.el);
}

/** Funding payments of the shown account (one market's, or all), newest first, read again when a position changes. */
export function fundingPanel(app: App, d: Disposer, only?: { exchange: string; symbol: string }): HTMLElement {
  const body = h("div", {}, placeholder("loading", "Loading funding…"));
  const load = async () => {
    try {
      const params: Record<string, unknown> = { ...app.accounts.scope() };
      if (only) Object.assign(params, { exchange: only.exchange, pair: P.pairOf(only.symbol) });
      const list = await app.rpc.call<FundingEntry[]>("get_funding", params);
      const rows = [...list].sort((a, b) => b.time - a.time).slice(0, 200);
      if (!rows.length) return fill(body, placeholder("empty", "No funding paid or received yet."));
      fill(body, h("table", { class: "grid small stack", "data-testid": "funding-table" },
        h("thead", {}, h("tr", {}, ...["Time", "Market", "Size", "Rate", "Mark", "Amount"].map((t) => h("th", {}, t)))),
        h("tbody", {}, ...rows.map((f) => {
          const r = P.fundingRow(f, priceDecimals(app, f));
          return h("tr", { "data-testid": "funding-row" },
            h("td", { "data-label": "Time" }, new Date(r.time / 1e6).toLocaleString("en-GB", { timeZone: prefs.value.tz, hour12: false })),
            h("td", { "data-label": "Market" }, h("span", {}, r.market, h("div", { class: "muted small" }, r.leg))),
            h("td", { class: "num", "data-label": "Size" }, prefs.value.mask ? MASK : r.size),
            h("td", { class: "num", "data-label": "Rate" }, r.rate),
            h("td", { class: "num", "data-label": "Mark" }, r.mark),
            h("td", { class: `num ${r.amountClass}`, "data-label": "Amount" }, prefs.value.mask ? MASK : r.amount));
        }))));
    } catch (e) {
      fill(body, placeholder("error", `Funding: ${(e as Error).message}`));
    }
  };
  void load();
  let timer = 0;
  // a push may come with every mark move: read again at most every 5 s while they come
  d.add(app.rpc.on("positions_updated", () => { if (!timer) timer = window.setTimeout(() => { timer = 0; void load(); }, 5000); }));
  d.add(() => window.clearTimeout(timer));
  d.every(30_000, () => void load());
  return h("section", { class: "card", "data-testid": "funding" }, h("h3", {}, only ? `Funding · ${only.symbol}` : "Funding history"), body);
}
