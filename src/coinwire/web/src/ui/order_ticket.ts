// The order ticket: every order type with the fields it needs, checked before sending, placed on the shown account.

import type { App } from "../app";
import { ApiError } from "../api/http";
import type { Account, Market, Order, PositionSide, Wallet } from "../api/types";
import * as C from "../conditional";
import * as D from "../decimal";
import * as fmt from "../format";
import * as P from "../positions";
import { Disposer, fill, h } from "./dom";
import type { LivePositions } from "./positions";

/** Funds an order without a wallet set can use: the unallocated available balance of the account it is placed on. */
async function available(app: App, exchange: string, account: Account | null): Promise<Map<string, string>> {
  const per = await app.rpc.call<Record<string, Wallet[]>>("get_unallocated_per_exchange", account ? { account: account.id } : {});
  return new Map((per[exchange] ?? []).map((w) => [w.currency, w.available]));
}

/** Which account the ticket places on, in words (none yet: the server opens the user's paper account with the first order). */
function accountLine(app: App, exchange: string, account: Account | null): HTMLElement {
  return h("div", { class: "muted", "data-testid": "ticket-account" }, "Account: ",
    account ? h("strong", {}, app.accounts.label(account)) : `your own on ${exchange} (opened with your first order)`);
}

const options = <T extends string>(list: [T, string][]) => list.map(([v, t]) => h("option", { value: v }, t));
const priceInput = (name: string, placeholder: string) => h("input", { name, inputmode: "decimal", placeholder, autocomplete: "off" });

/** A datetime-local value (the browser's own zone) as epoch ms; null when empty or not a date. */
function localMs(value: string): number | null {
  if (!value) return null;
  const ms = new Date(value).getTime();
  return Number.isFinite(ms) ? ms : null;
}

/**
 * `positions`: the account's live positions when `m` is a perpetual (its reduce-only box and, in hedge
 * mode, the position side; funds are then margin in the settle currency), absent on a spot market.
 */
export function orderTicket(app: App, m: Market, d: Disposer, live?: LivePositions): { el: HTMLElement; setPrice: (p: string) => void } {
  const account = app.accounts.forOrders(m.exchange); // fixed while the page shows it: another choice redraws the page
  let side: C.Side = "buy";
  let funds = new Map<string, string>();
  let fundsRead = false; // the ticket's funds line waits for the first answer
  const pd = D.decimalsOf(m.tick), sd = D.decimalsOf(m.step);
  const q = m.quote;
  const sideBtns = (["buy", "sell"] as const).map((s) =>
    h("button", { type: "button", class: `side-${s} ${s === side ? "on" : ""}`, "aria-pressed": s === side, "data-side": s,
      onclick: () => { side = s; sideBtns.forEach((b) => { b.classList.toggle("on", b.dataset.side === s); b.setAttribute("aria-pressed", String(b.dataset.side === s)); }); submit.textContent = `${s === "buy" ? "Buy" : "Sell"} ${m.base}`; submit.className = `side-${s}`; recompute(); } },
      s === "buy" ? "Buy" : "Sell"));
  // paper perpetuals take no trailing stops, OCO lists or brackets yet (`unsupported_on_perpetual`): not offered
  const onPerp = live !== undefined;
  const type = h("select", { name: "type", "aria-label": "order type" },
    ...options(onPerp ? C.TICKET_TYPES.filter(([t]) => t !== "trailing-stop" && t !== "oco") : C.TICKET_TYPES));
  const priceIn = priceInput("price", `price (${q})`);
  const stopIn = priceInput("stop_price", `trigger level (${q})`);
  const stopLimitIn = priceInput("stop_limit", `optional (${q})`);
  const trailIn = h("input", { name: "trailing_delta", placeholder: `1.5% or a distance in ${q}`, autocomplete: "off" });
  const activationIn = priceInput("activation_price", `optional (${q})`);
  const trigger = h("select", { name: "trigger", "aria-label": "trigger" }, ...options(C.TRIGGERS));
  const tif = h("select", { name: "time_in_force", "aria-label": "time in force" }, ...options(C.TIMES_IN_FORCE));
  const expireIn = h("input", { type: "datetime-local", name: "expire_at", "aria-label": "expires" });
  const allowNow = h("input", { type: "checkbox", name: "allow_immediate" });
  const withBracket = h("input", { type: "checkbox", name: "bracket" });
  const tpKind = h("select", { name: "take_profit_type", "aria-label": "take profit as" },
    ...options<C.TakeProfitKind>([["limit", "Limit"], ["take-profit-market", "Take-profit market"], ["take-profit-limit", "Take-profit limit"]]));
  const tpPrice = priceInput("take_profit", `take profit (${q})`);
  const tpLimit = priceInput("take_profit_limit", `limit (${q})`);
  const slStop = priceInput("stop_loss", `stop loss (${q})`);
  const slLimit = priceInput("stop_loss_limit", `optional (${q})`);
  const positions = live?.list;
  const reduceOnly = h("input", { type: "checkbox", name: "reduce_only" });
  const positionSide = h("select", { name: "position_side", "aria-label": "position side" },
    ...options<PositionSide>([["long", "Long leg"], ["short", "Short leg"]]));
  const reduceField = h("label", { class: "check" }, reduceOnly, "Reduce-only: never increase the position (cut to its size)");
  const sideField = h("label", { "data-testid": "ticket-position-side" }, "Position side (hedge mode)", positionSide);
  const hedge = () => live !== undefined && (live.hedge.value ?? P.hedgeModeOf(live.list.value ?? [], account?.id ?? null, m.exchange));
  const perpBox = positions ? h("div", { class: "perp", "data-testid": "ticket-perp" }, reduceField, sideField) : null;
  const sizeIn = h("input", { name: "size", inputmode: "decimal", placeholder: `amount (${m.base})`, autocomplete: "off" });
  const pct = h("input", { type: "range", name: "percent", min: 0, max: 100, step: 1, value: 0, "aria-label": "percent of available" });
  const pctLabel = h("span", { class: "muted" }, "0%");
  const avail = h("div", { class: "muted", "data-testid": "available" }, "available: …");
  const notional = h("div", { class: "muted", "data-testid": "notional" }, "");
  const problems = h("ul", { class: "problems", "data-testid": "ticket-problems", "aria-live": "polite" });
  const result = h("p", { class: "result", "data-testid": "ticket-result", role: "status" });
  const submit = h("button", { type: "submit", class: "side-buy", "data-testid": "place-order" }, `Buy ${m.base}`);

  const priceName = h("span", {}, `Price (${q})`);
  const stopName = h("span", {}, `Stop price (${q})`);
  const touchBtn = h("button", { type: "button", class: "ghost", title: "best price on the other side", onclick: () => { const t = touch(); if (t) { priceIn.value = t; recompute(); } } }, "touch");
  const priceField = h("label", {}, priceName, h("div", { class: "row" }, priceIn, touchBtn));
  const stopField = h("label", {}, stopName, stopIn);
  const stopLimitField = h("label", {}, `Stop leg's limit (${q}, empty: a stop-market leg)`, stopLimitIn);
  const trailField = h("label", {}, `Trailing delta (1.5% or ${q})`, trailIn);
  const activationField = h("label", {}, `Activation price (${q}, empty: at once)`, activationIn);
  const triggerField = h("label", {}, "Trigger", trigger);
  const tifField = h("label", {}, "Time in force", tif);
  const expireField = h("label", {}, "Expires (your browser's time)", expireIn);
  const allowField = h("label", { class: "check" }, allowNow, "Let it trigger at once if its price is already reached");
  const bracketField = h("label", { class: "check" }, withBracket, "Attach a take profit and a stop loss");
  const tpLimitField = h("label", {}, `Take profit's limit (${q})`, tpLimit);
  const bracketBox = h("fieldset", { class: "bracket", "data-testid": "bracket" },
    h("legend", {}, "Bracket: an OCO placed once this order fills"),
    h("label", {}, "Take profit as", tpKind), h("label", {}, `Take profit (${q})`, tpPrice), tpLimitField,
    h("label", {}, `Stop loss trigger (${q})`, slStop), h("label", {}, `Stop loss limit (${q}, empty: stop-market)`, slLimit));

  const touch = (): string | null => {
    const t = app.tickers.value.get(`${m.exchange}:${m.symbol}`);
    return (side === "buy" ? t?.ask : t?.bid) ?? t?.price ?? null;
  };
  const now = (): C.MarketNow => {
    const t = app.tickers.value.get(`${m.exchange}:${m.symbol}`);
    return { last: t?.price ?? null, bid: t?.bid ?? null, ask: t?.ask ?? null };
  };
  const kind = () => type.value as C.TicketType;
  const input = (): C.TicketInput => {
    const f = C.FIELDS[kind()];
    return {
      type: kind(), side, size: sizeIn.value, limit: priceIn.value, stopPrice: stopIn.value, stopLimit: stopLimitIn.value,
      trigger: trigger.value as C.Trigger, trailingDelta: trailIn.value, activationPrice: activationIn.value,
      tif: tif.value as C.TimeInForce, expireAt: localMs(expireIn.value), allowImmediate: allowNow.checked,
      bracket: f.bracket && !onPerp && withBracket.checked
        ? { tpKind: tpKind.value as C.TakeProfitKind, tpPrice: tpPrice.value, tpLimit: tpLimit.value, slStop: slStop.value, slLimit: slLimit.value }
        : null,
      reduceOnly: positions !== undefined && reduceOnly.checked,
      positionSide: hedge() ? (positionSide.value as PositionSide) : "both",
    };
  };

  /** Show the fields the chosen type has. */
  const layout = () => {
    const t = kind(), f = C.FIELDS[t];
    priceField.hidden = !f.limit;
    priceName.textContent = t === "oco" ? `Limit leg's price (${q})` : `Price (${q})`;
    stopField.hidden = !f.stop;
    stopName.textContent = t === "oco" ? `Stop leg's trigger (${q})` : t.startsWith("take-profit") ? `Trigger price (${q})` : `Stop price (${q})`;
    stopLimitField.hidden = !f.stopLimit;
    trailField.hidden = activationField.hidden = !f.trailing;
    triggerField.hidden = !f.trigger;
    allowField.hidden = !f.trigger;
    tifField.hidden = !f.tif;
    expireField.hidden = !f.tif || tif.value !== "GTD";
    bracketField.hidden = !f.bracket || onPerp;
    bracketBox.hidden = !f.bracket || onPerp || !withBracket.checked;
    tpLimitField.hidden = tpKind.value !== "take-profit-limit";
    sideField.hidden = !hedge();
    if (!f.limit) priceIn.value = "";
  };

  /** Everything wrong with the ticket as it stands (empty: it may be sent). */
  const validate = (): string[] => {
    const out: string[] = [];
    const size = D.parse(sizeIn.value);
    if (!sizeIn.value.trim()) out.push("Enter an amount.");
    else if (!size || size.units <= 0n) out.push("The amount must be a positive number.");
    else {
      if (!D.isMultiple(size, D.parse(m.step)!)) out.push(`The amount must be a multiple of ${m.step} ${m.base}.`);
      if (D.cmp(size, D.parse(m.min_size)!) < 0) out.push(`The minimum amount is ${m.min_size} ${m.base}.`);
      if (m.max_size && D.cmp(size, D.parse(m.max_size)!) > 0) out.push(`The maximum amount is ${m.max_size} ${m.base}.`);
    }
    const x = input();
    out.push(...C.ticketProblems(x, m, now(), Date.now()));
    if (x.reduceOnly) {
      const p = P.reduceOnlyProblem(side, x.positionSide ?? "both", positions?.value ?? null, { exchange: m.exchange, symbol: m.symbol, account: account?.id ?? null });
      if (p) out.push(p);
    }
    const px = C.valuePrice(x, touch());
    if (size && size.units > 0n && px) {
      const value = D.mul(size, px);
      notional.textContent = `≈ ${fmt.price(D.toString(value), pd)} ${q}`;
      if (D.cmp(value, D.parse(m.min_notional)!) < 0) out.push(`The order value must be at least ${m.min_notional} ${q}.`);
      const have = D.parse(funds.get(side === "buy" ? q : m.base) ?? "0")!;
      const need = side === "buy" ? value : size;
      // a perpetual's order needs margin (value / leverage, in the settle currency): the server checks it
      if (!positions && funds.size && D.cmp(need, have) > 0) out.push(`Not enough ${side === "buy" ? q : m.base}: ${D.toString(need)} needed, ${D.toString(have)} available.`);
    } else notional.textContent = "";
    return out;
  };
  const recompute = () => {
    layout();
    const issues = validate();
    fill(problems, ...issues.map((t) => h("li", {}, t)));
    submit.disabled = issues.length > 0;
  };
  const fromPercent = () => {
    pctLabel.textContent = `${pct.value}%`;
    const share = D.parse(pct.value)!;
    const step = D.parse(m.step)!;
    if (side === "sell" && !positions) {
      const have = D.parse(funds.get(m.base) ?? "0")!;
      sizeIn.value = D.toString(D.floorTo(D.divFloor(D.mul(have, share), { units: 100n, scale: 0 }, sd + 2), step));
    } else {
      const px = C.valuePrice(input(), touch());
      if (!px) return;
      const have = D.mul(D.parse(funds.get(q) ?? "0")!, { units: BigInt(leverage()), scale: 0 }); // a perpetual: margin x leverage
      const fee = 1 + Number(m.taker_fee); // leave room for the fee
      const spend = D.divFloor(D.mul(have, share), { units: BigInt(Math.round(100 * fee * 1e6)), scale: 6 }, 12);
      sizeIn.value = D.toString(D.floorTo(D.divFloor(spend, px, sd + 2), step));
    }
    recompute();
  };
  /** The leverage of the ticket's market (1 on spot, and on a perpetual without a position to read it from). */
  const leverage = (): number => (positions?.value ?? []).find((p) => p.exchange === m.exchange && p.symbol === m.symbol
    && (account === null || p.account === account.id))?.leverage ?? 1;
  const showFunds = () => {
    if (!fundsRead) return;
    avail.textContent = positions // a perpetual's margin is in its settle currency; it holds no base
      ? `available margin: ${fmt.amount(funds.get(m.settle ?? q) ?? "0", q)} ${m.settle ?? q} · leverage ${leverage()}x`
      : `available: ${fmt.amount(funds.get(q) ?? "0", q)} ${q} · ${fmt.amount(funds.get(m.base) ?? "0", m.base)} ${m.base}`;
  };
  const refreshFunds = async () => {
    try {
      funds = await available(app, m.exchange, account);
      fundsRead = true;
      showFunds();
      recompute();
    } catch (e) {
      avail.textContent = `available: ${(e as Error).message}`;
    }
  };
  for (const el of [type, trigger, tif, tpKind, withBracket, allowNow, expireIn, reduceOnly, positionSide]) el.addEventListener("change", recompute);
  for (const el of [priceIn, stopIn, stopLimitIn, trailIn, activationIn, expireIn, tpPrice, tpLimit, slStop, slLimit]) el.addEventListener("input", recompute);
  sizeIn.addEventListener("input", () => { pct.value = "0"; pctLabel.textContent = "0%"; recompute(); });
  pct.addEventListener("input", fromPercent);
  const quick = h("div", { class: "seg" }, ...[25, 50, 75, 100].map((v) =>
    h("button", { type: "button", onclick: () => { pct.value = String(v); fromPercent(); } }, `${v}%`)));

  const form = h("form", { class: "card ticket", "aria-label": "order ticket", "data-testid": "ticket", novalidate: true },
    h("h3", {}, `Order · ${m.symbol} · ${m.exchange}`),
    app.can("read", "account") ? accountLine(app, m.exchange, account) : null,
    h("div", { class: "seg sides" }, ...sideBtns),
    h("label", {}, "Type", type),
    stopField, triggerField, trailField, activationField, priceField, stopLimitField, tifField, expireField,
    h("label", {}, `Amount (${m.base})`, sizeIn),
    h("label", {}, h("span", {}, "% of available ", pctLabel), pct), quick,
    allowField, perpBox, bracketField, bracketBox,
    avail, notional, problems, submit, result);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (validate().length) return recompute();
    submit.disabled = true;
    result.className = "result";
    result.textContent = "Sending…";
    const call = C.ticketCall(input(), m, account?.id ?? null);
    try {
      if (call.method === "make_oco") {
        const legs = await app.rpc.call<Order[]>("make_oco", call.params);
        result.textContent = `OCO #${legs[0]?.oco_id ?? legs[0]?.id}: ${legs.map((o) => `#${o.id} ${o.type} ${o.status}`).join(", ")}.`;
      } else {
        const o = await app.rpc.call<Order>("make_order", call.params);
        const at = o.stop_price ? ` at ${fmt.price(o.stop_price, pd)}` : "";
        result.textContent = o.status === "untriggered"
          ? `Order #${o.id} untriggered: ${o.type} ${o.side} ${fmt.amount(o.size, m.base)} ${m.base}${at}.`
          : `Order #${o.id} ${o.status}${o.done_reason ? ` (${o.done_reason})` : ""}: ${o.side} ${fmt.amount(o.filled_size, m.base)} of ${fmt.amount(o.size, m.base)} ${m.base}${Number(o.avg_price) ? ` at ${fmt.price(o.avg_price, pd)}` : ""}.`;
      }
      result.className = "result ok";
      void refreshFunds();
    } catch (err) {
      const a = err as ApiError;
      result.textContent = `Refused: ${a.message}`;
      result.title = String(a.data?.reason ?? a.code);
      result.className = "result error";
    } finally {
      recompute();
    }
  });
  void refreshFunds();
  d.every(5000, () => void refreshFunds());
  d.add(app.rpc.on("trade", (t: { account?: number }) => { if (!account || t.account === account.id) void refreshFunds(); }));
  if (live) {
    d.add(live.list.watch(() => { showFunds(); recompute(); }));
    d.add(live.hedge.watch(() => recompute()));
  }
  d.add(app.tickers.watch(() => { if (kind() !== "limit" && kind() !== "limit-post-only" || withBracket.checked) recompute(); }));
  recompute();
  return { el: form, setPrice: (p: string) => { if (C.FIELDS[kind()].limit) { priceIn.value = p; recompute(); } } };
}
