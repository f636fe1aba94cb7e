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
}

/** One row per wallet with something available: `exchange:currency` slider and amount, bounded by the available. */
export class Allocator {
  readonly el: HTMLElement;
  private rows: { w: Wallet; input: HTMLInputElement }[];

  constructor(wallets: Wallet[], empty = "No unallocated funds to allocate.") {
    this.rows = [];
    const els = wallets.filter((w) => Number(w.available) > 0).map((w) => {
      const max = D.parse(w.available)!;
      const key = `${w.exchange}:${w.currency}`;
      const slider = h("input", { type: "range", min: 0, max: STEPS, step: 1, value: 0, "aria-label": `share of ${w.currency} on ${w.exchange}`, "data-slider": key });
      const input = h("input", { inputmode: "decimal", value: "0", "aria-label": `${w.currency} on ${w.exchange}`, "data-alloc": key });
      slider.addEventListener("input", () => {
        input.value = D.toString(D.divFloor(D.mul(max, D.parse(slider.value)!), { units: BigInt(STEPS), scale: 0 }, 8));
      });
      input.addEventListener("input", () => {
        slider.value = String(Math.round((Number(input.value) / Number(w.available)) * STEPS) || 0);
      });
      this.rows.push({ w, input });
      return h("div", { class: "alloc" }, h("span", {}, `${w.currency} · ${w.exchange}`), slider, input,
        h("span", { class: "muted" }, `of ${fmt.amount(w.available, w.currency)}`));
    });
    this.el = h("div", { class: "allocator" }, els.length ? els : placeholder("empty", empty));
  }

  /** Why the amounts cannot be sent (a row outside 0..available), or null. */
  problem(): string | null {
    const bad = this.rows.find((r) => {
      const v = D.parse(r.input.value);
      return !v || v.units < 0n || D.cmp(v, D.parse(r.w.available)!) > 0;
    });
    return bad ? `${bad.w.currency} on ${bad.w.exchange}: enter between 0 and ${bad.w.available}.` : null;
  }

  /** The rows given more than nothing. */
  chosen(): Allocation[] {
    return this.rows.filter((r) => Number(r.input.value) > 0)
      .map((r) => ({ exchange: r.w.exchange, currency: r.w.currency, allocation: r.input.value.trim() }));
  }
}
