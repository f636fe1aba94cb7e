// What every page shares: the session, the REST and JSON-RPC clients, abilities, accounts, live tickers, FX.

import { Accounts } from "./accounts";
import { Http } from "./api/http";
import { Rpc, channels } from "./api/rpc";
import { Session } from "./api/session";
import type { Abilities, Exchange, Market, Ticker } from "./api/types";
import { attachServer, detachServer, prefs } from "./prefs";
import { Disposer, Signal, h } from "./ui/dom";

export class App {
  readonly session = new Session();
  readonly http = new Http(this.session);
  readonly rpc = new Rpc(() => this.session.accessToken());
  readonly abilities = new Signal<Abilities | null>(null);
  readonly exchanges = new Signal<Exchange[]>([]);
  /** The user's accounts and the one the pages show (all of them when none is chosen). */
  readonly accounts = new Accounts();
  /** Latest price per `exchange:symbol`, live from the `ticker` channel. */
  readonly tickers = new Signal<Map<string, Ticker>>(new Map());
  /** USD -> the preferred currency (1 for USD, or when no rate is known: then `fxNote` says so). */
  readonly fx = new Signal<{ currency: string; rate: number; note: string }>({ currency: "USD", rate: 1, note: "" });
  private live = new Disposer();

  /** May the user do `action` on `subject`? (The server's own rules, from /api/v1/me/abilities.) */
  can(action: string, subject: string): boolean {
    return this.canWith(this.abilities.value, action, subject);
  }

  private canWith(abilities: Abilities | null, action: string, subject: string): boolean {
    return (abilities?.rules ?? []).some((r) => r.action === action && r.subject === subject);
  }

  market(exchange: string, symbol: string): Market | undefined {
    return this.exchanges.value.find((e) => e.exchange === exchange)?.markets.find((m) => m.symbol === symbol);
  }

  /** After sign-in: who am I, what may I do, the exchanges, my preferences and accounts; then the live connection and its channels. */
  async begin(): Promise<void> {
    const [abilities, exchanges] = await Promise.all([
      this.http.get<Abilities>("/api/v1/me/abilities"),
      this.http.get<Exchange[]>("/xwrap/v1/exchanges"),
      attachServer(this.http, (message) => this.toast(`Preferences not saved: ${message}`, "error")),
    ]);
    if (this.canWith(abilities, "read", "account")) {
      await this.accounts.attach(this.http, abilities.user.id, this.canWith(abilities, "admin", "user"));
      // a paper account opened elsewhere (another tab, the API), a grant given or taken back: the switcher follows
      this.live.every(30_000, () => void this.accounts.refresh().catch(() => undefined));
      const visible = () => { if (document.visibilityState === "visible") void this.accounts.refresh().catch(() => undefined); };
      document.addEventListener("visibilitychange", visible);
      this.live.add(() => document.removeEventListener("visibilitychange", visible));
    }
    this.abilities.set(abilities);
    this.exchanges.set(exchanges);
    const initial = await this.http.get<Ticker[]>("/api/v1/tickers").catch(() => [] as Ticker[]);
    this.tickers.set(new Map(initial.map((t) => [`${t.exchange}:${t.symbol}`, t])));
    this.rpc.start();
    if (abilities.channels.includes("ticker")) this.live.add(this.rpc.keep(channels(["ticker", "exchstatus"])));
    let pending: Ticker[] = [];
    this.live.add(this.rpc.on("ticker", (t: Ticker) => pending.push(t)));
    this.live.every(500, () => {
      if (!pending.length) return;
      const next = new Map(this.tickers.value);
      for (const t of pending) next.set(`${t.exchange}:${t.symbol}`, t);
      pending = [];
      this.tickers.set(next);
    });
    this.live.add(
      this.rpc.on("exchstatus", (p: { exchange?: string; status?: string }) => {
        if (!p.exchange || !p.status) return;
        this.exchanges.set(this.exchanges.value.map((e) => (e.exchange === p.exchange ? { ...e, status: p.status! } : e)));
      }),
    );
    this.live.add(prefs.watch((p) => void this.loadFx(p.currency)));
    // an import runs on the server while the user is anywhere: its end is told on whichever page is open
    if (abilities.channels.includes("import_progress")) {
      this.live.add(this.rpc.keep(channels(["import_progress"])));
      this.live.add(this.rpc.on("import_progress", (p: { account_id: number; state: string }) => {
        const name = this.accounts.list.value.find((a) => a.id === p.account_id)?.name ?? `account ${p.account_id}`;
        if (p.state === "done") this.toast(`The import of ${name} finished: its history is in.`);
        else if (p.state === "failed") this.toast(`The import of ${name} stopped; resume it on the Import page.`, "error");
      }));
    }
  }

  end(): void {
    this.live.dispose();
    this.live = new Disposer();
    this.rpc.stop();
    this.abilities.set(null);
    this.accounts.detach();
    detachServer();
  }

  private async loadFx(currency: string): Promise<void> {
    if (this.fx.value.currency === currency && this.fx.value.rate) return;
    if (currency === "USD") {
      this.fx.set({ currency, rate: 1, note: "" });
      return;
    }
    try {
      const c = await this.http.get<{ amount?: string; result?: string; value?: string }>("/api/v1/convert", { amount: 1, from: "USD", to: currency });
      const rate = Number(c.result ?? c.value ?? c.amount);
      if (!Number.isFinite(rate) || rate <= 0) throw new Error("no rate");
      this.fx.set({ currency, rate, note: "" });
    } catch {
      this.fx.set({ currency: "USD", rate: 1, note: `no USD→${currency} rate is configured on the server (FX source); values in USD` });
    }
  }

  // --- small UI services ------------------------------------------------------------------
  toast(text: string, kind: "ok" | "error" = "ok"): void {
    const box = document.getElementById("toasts") ?? document.body.appendChild(h("div", { id: "toasts", "aria-live": "polite" }));
    const t = h("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
    box.append(t);
    window.setTimeout(() => t.remove(), kind === "error" ? 8000 : 4000);
  }

  /** A modal that asks before a change is sent; resolves true on Confirm. */
  confirm(title: string, body: Node | string, action = "Confirm"): Promise<boolean> {
    return new Promise((resolve) => {
      const close = (answer: boolean) => {
        dialog.close();
        dialog.remove();
        resolve(answer);
      };
      const dialog = h(
        "dialog",
        { class: "modal", "aria-label": title },
        h("h2", {}, title),
        h("div", { class: "modal-body" }, body),
        h(
          "div",
          { class: "row end" },
          h("button", { type: "button", class: "ghost", onclick: () => close(false) }, "Cancel"),
          h("button", { type: "button", class: "primary", "data-testid": "modal-confirm", onclick: () => close(true) }, action),
        ),
      );
      dialog.addEventListener("cancel", () => close(false));
      document.body.append(dialog);
      dialog.showModal();
    });
  }
}
