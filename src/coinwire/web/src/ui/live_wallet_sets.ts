// Wallet sets kept current by the `wallet_set` push channel, for the pages that show them (Wallets, Overview): one
// subscription logic, so that no page polls `get_all_wallet_sets` and every page recovers alike after a reconnection.

import type { App } from "../app";
import type { WalletSet } from "../api/types";
import type { Disposer } from "./dom";

/** A `get_all_wallet_sets` answer: the sets by id, beside `total`, `allocated` and `unallocated`. */
export type WalletSets = Record<string, WalletSet>;

/** What a page does when the sets change: redraw a pushed set, read the three sums again, read everything again. */
export interface LiveSetHandlers {
  set: () => void;
  totals: () => Promise<void>;
  reload: () => Promise<void>;
}

const NAMED_SETS_MAX = 100; // sets one subscription may name (the server's `ws_max_patterns` default)
const SUMS_AFTER_MS = 1000; // funds moved: the sums are read again this long after the first move (a burst costs one read)

/**
 * The `wallet_set` channel instead of a poll: each pushed set replaces its entry in the page's
 * answer (`current`; a closed one leaves), and the sums are read again once funds moved (after a
 * push, or a fill of the user's accounts on the `trade` channel, which also moves funds outside any
 * set). On every (re)connection the page subscribes and reads everything again, so nothing missed
 * while the connection was down stays missing. Users hear every set they may read, and a set the
 * page does not show yet (made elsewhere) makes it read the list again; admins, who hear every
 * user's sets without narrowing, name the sets the page shows.
 */
export function liveSets(app: App, current: () => WalletSets | null, d: Disposer) {
  const admin = app.can("admin", "user");
  let handlers: LiveSetHandlers | null = null;
  let named = "";
  let sumsTimer = 0;
  let reloadTimer = 0;
  d.add(() => { window.clearTimeout(sumsTimer); window.clearTimeout(reloadTimer); });
  const later = (which: "sums" | "reload") => {
    if (which === "sums" && !sumsTimer) {
      sumsTimer = window.setTimeout(() => { sumsTimer = 0; void handlers?.totals().catch(() => undefined); }, SUMS_AFTER_MS);
    } else if (which === "reload" && !reloadTimer) {
      reloadTimer = window.setTimeout(() => { reloadTimer = 0; void handlers?.reload(); }, SUMS_AFTER_MS);
    }
  };
  const subscribe = (ids?: string[]) =>
    app.rpc.call("subscribe", ids ? { channels: ["wallet_set"], wallet_sets: ids.map(Number) } : { channels: ["wallet_set"] });
  const pushed = (s: WalletSet) => {
    const all = current();
    if (!all) return;
    const id = String(s.id);
    if (!(id in all)) {
      const chosen = app.accounts.chosen.value;
      if (s.active !== false && !admin && (!chosen || (s.accounts ?? []).includes(chosen.id))) later("reload"); // a new set
      return;
    }
    if (s.active === false) delete all[id];
    else all[id] = s;
    handlers?.set();
    later("sums");
  };
  return {
    /** Subscribe (again on every reconnection) and read everything with `h.reload`, then apply what is pushed. */
    start(h: LiveSetHandlers): void {
      handlers = h;
      d.add(app.rpc.on("wallet_set", pushed));
      d.add(app.rpc.on("trade", (t: { account?: number }) => { if (app.accounts.shows(t.account)) later("sums"); }));
      d.add(app.rpc.keep({
        open: async () => {
          named = "";
          if (app.can("read", "wallet_set")) await subscribe(admin ? [] : undefined).catch(() => undefined);
          await h.reload(); // the first reading, and after a reconnection everything that may have been missed
        },
        close: (rpc) => rpc.call("unsubscribe", { channels: ["wallet_set"] }),
      }));
    },
    /** After a full reading: an admin's subscription names the sets now shown. */
    shown(all: WalletSets): void {
      if (!admin || !app.can("read", "wallet_set")) return;
      const ids = Object.keys(all).filter((k) => /^\d+$/.test(k)).sort();
      if (ids.join(",") === named) return;
      named = ids.join(",");
      // past the server's limit on named sets (100 by default), every set: those the page does not show are ignored
      void subscribe(ids.length <= NAMED_SETS_MAX ? ids : undefined).catch(() => undefined);
    },
  };
}
