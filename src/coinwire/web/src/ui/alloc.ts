// The slider allocator: a share of each wallet's available funds, by slider or typed amount, checked exactly.

import type { Wallet } from "../api/types";
import * as D from "../decimal";
import * as fmt from "../format";
import { h, placeholder } from "./dom";

const STEPS = 1000; // slider positions: 0.1% of the available each

export interface Allocation {
  exchange: string;
  currency: string;
  allocation: string; // a decimal string, as the APIs take amounts
  account?: number; // the account the funds come from (the wallet's, when it names one)
}

/**
 * One row per wallet with something available: `exchange:currency` slider and amount, bounded
 * by the available. Wallets that name their `account` give allocations from that account;
 * `group` names the account a row draws from, shown above its rows when funds of several
 * accounts are offered (null: one source, no headings).
 */
export class Allocator {
  readonly el: HTMLElement;
  private rows: { w: Wallet; input: HTMLInputElement }[];

  constructor(wallets: Wallet[], empty = "No unallocated funds to allocate.", group: ((w: Wallet) => string) | null = null) {
    this.rows = [];
    let heading: string | null = null;
    const els = wallets.filter((w) => Number(w.available) > 0).flatMap((w) => {
      const max = D.parse(w.available)!;
      const key = `${w.exchange}:${w.currency}`;
      const from = group ? ` from ${group(w)}` : "";
      const slider = h("input", { type: "range", min: 0, max: STEPS, step: 1, value: 0, "aria-label": `share of ${w.currency} on ${w.exchange}${from}`,
        "data-slider": key, "data-account": w.account });
      const input = h("input", { inputmode: "decimal", value: "0", "aria-label": `${w.currency} on ${w.exchange}${from}`, "data-alloc": key,
        "data-account": w.account });
      slider.addEventListener("input", () => {
        input.value = D.toString(D.divFloor(D.mul(max, D.parse(slider.value)!), { units: BigInt(STEPS), scale: 0 }, 8));
      });
      input.addEventListener("input", () => {
        slider.value = String(Math.round((Number(input.value) / Number(w.available)) * STEPS) || 0);
      });
      this.rows.push({ w, input });
      const row = h("div", { class: "alloc" }, h("span", {}, `${w.currency} · ${w.exchange}`), slider, input,
        h("span", { class: "muted" }, `of ${fmt.amount(w.available, w.currency)}`));
      const name = group ? group(w) : null;
      if (name === null || name === heading) return [row];
      heading = name;
      return [h("div", { class: "alloc-group" }, `From ${name}`), row];
    });
    this.el = h("div", { class: "allocator" }, els.length ? els : placeholder("empty", empty));
  }

  /** Why the amounts cannot be sent (a row outside 0..available), or null. */
  problem(): string | null {
    const bad = this.rows.find((r) => {
      const v = D.parse(r.input.value);
      return !v || v.units < 0n || D.cmp(v, D.parse(r.w.available)!) > 0;
    });
    if (bad) return `${bad.w.currency} on ${bad.w.exchange}: enter between 0 and ${bad.w.available}.`;
    const from = new Map<string, number | undefined>();
    for (const r of this.rows.filter((r) => Number(r.input.value) > 0)) {
      if (from.has(r.w.exchange) && from.get(r.w.exchange) !== r.w.account) {
        return `A wallet set holds one account's funds per exchange: allocate from one account on ${r.w.exchange}.`;
      }
      from.set(r.w.exchange, r.w.account);
    }
    return null;
  }

  /** The rows given more than nothing. */
  chosen(): Allocation[] {
    return this.rows.filter((r) => Number(r.input.value) > 0)
      .map((r) => ({ exchange: r.w.exchange, currency: r.w.currency, allocation: r.input.value.trim(),
        ...(r.w.account === undefined ? {} : { account: r.w.account }) }));
  }
}
