// The accounts the user may read (`GET /api/v1/accounts`) and the one the pages show: this browser's choice, per user.

import type { Http } from "./api/http";
import type { Account, WalletSet } from "./api/types";
import { Signal } from "./ui/dom";

const KEY = "coinwire.account"; // + ".<user id>": one browser may be used by several users, and ids are per server user

/**
 * Which account the dashboard shows. `chosen` is null for "All accounts" (every account the
 * user may read, as the API answers without `account`); a choice is kept in this browser's
 * `localStorage` (it is a view, not a preference the server needs) and dropped when the
 * account is no longer in the user's list (closed, a grant taken back, another server).
 */
export class Accounts {
  readonly list = new Signal<Account[]>([]);
  /** Changes only when another account (or All) is chosen, not when the list is read again. */
  readonly chosen = new Signal<Account | null>(null);
  private userId: number | null = null;
  private http: Http | null = null;
  private owners = new Map<number, string>(); // user names, for admins, who see every user's accounts

  /**
   * Signed in: read the list, then the account this browser last showed this user (if it is
   * still theirs). `users`: the caller may list users (admins), so other users' accounts are
   * named by their owner's user name.
   */
  async attach(http: Http, userId: number, users: boolean): Promise<void> {
    this.http = http;
    this.userId = userId;
    const [, names] = await Promise.all([
      this.refresh(),
      users ? http.get<{ id: number; username: string }[]>("/api/v1/users").catch(() => []) : Promise.resolve([]),
    ]);
    this.owners = new Map(names.map((u) => [u.id, u.username]));
    const saved = Number(localStorage.getItem(this.key()) ?? "");
    this.chosen.set(this.list.value.find((a) => a.id === saved) ?? null);
  }

  detach(): void {
    this.http = null;
    this.userId = null;
    this.owners = new Map();
    this.list.set([]);
    this.chosen.set(null);
  }

  /** Read the list again (a new account, a grant); an account that left it is no longer shown. */
  async refresh(): Promise<void> {
    const http = this.http;
    if (!http) return;
    const list = await http.get<Account[]>("/api/v1/accounts");
    if (this.http !== http) return; // signed out meanwhile
    if (JSON.stringify(list) !== JSON.stringify(this.list.value)) this.list.set(list);
    const now = this.chosen.value;
    if (now) {
      const still = list.find((a) => a.id === now.id);
      if (!still) this.choose(null);
      else if (JSON.stringify(still) !== JSON.stringify(now)) this.chosen.set(still); // renamed, closed
    }
  }

  choose(id: number | null): void {
    const next = id === null ? null : this.list.value.find((a) => a.id === id) ?? null;
    if (this.userId !== null) {
      if (next) localStorage.setItem(this.key(), String(next.id));
      else localStorage.removeItem(this.key());
    }
    if (next?.id !== this.chosen.value?.id) this.chosen.set(next);
  }

  /** The `account` parameter of every funds and orders call: the chosen account's id, or nothing for all of them. */
  scope(): { account?: number } {
    const a = this.chosen.value;
    return a ? { account: a.id } : {};
  }

  /** Does a notification or row of `account` belong to what the pages show? */
  shows(account: number | null | undefined): boolean {
    const a = this.chosen.value;
    return !a || account === a.id;
  }

  /**
   * The wallet sets of a `get_all_wallet_sets` answer (keyed by id, beside total, allocated
   * and unallocated) that hold the chosen account's funds, each with that account's wallets
   * only: a set may span several accounts, one per exchange, and the page shows one account.
   */
  sets(all: Record<string, WalletSet>): WalletSet[] {
    const sets = Object.entries(all).filter(([k]) => /^\d+$/.test(k)).map(([, s]) => s);
    const a = this.chosen.value;
    if (!a) return sets;
    return sets.map((s) => ({ ...s, wallets: s.wallets.filter((w) => w.account === a.id) })).filter((s) => s.wallets.length);
  }

  /** Do tables need an account column? Only when several accounts are shown at once. */
  several(): boolean {
    return !this.chosen.value && this.list.value.length > 1;
  }

  /** A short name for a table cell: the account's name, or its id when it is not in the user's list. */
  short(id: number | null | undefined): string {
    const a = this.byId(id);
    return a ? a.name : id === null || id === undefined ? "–" : `#${id}`;
  }

  byId(id: number | null | undefined): Account | undefined {
    return id === null || id === undefined ? undefined : this.list.value.find((a) => a.id === id);
  }

  /**
   * The account an order on `exchange` is placed on: the chosen one (when it is on that
   * exchange), else the user's own first account there, which is the one the server uses
   * when a call names none. Null: none yet (the server opens a paper account with the first
   * order), or the chosen account is on another exchange.
   */
  forOrders(exchange: string): Account | null {
    const a = this.chosen.value;
    if (a) return a.exchange === exchange ? a : null;
    return this.list.value.filter((x) => x.exchange === exchange && x.role === "owner").sort((x, y) => x.id - y.id)[0] ?? null;
  }

  /** Accounts whose funds the user may move (trade, allocate): the chosen one, else every one they own or were granted trade on. */
  tradable(): Account[] {
    const a = this.chosen.value;
    if (a) return a.role === "view" ? [] : [a];
    return this.list.value.filter((x) => x.active && (x.role === "owner" || x.role === "trade"));
  }

  /** An account as the switcher and the pages name it: `name · kind`, and whose it is when not the user's own. */
  label(a: Account): string {
    let whose = "";
    if (a.role === "admin") whose = ` · ${a.owner === null ? "the platform's" : this.owners.get(a.owner) ?? `user #${a.owner}`}`;
    else if (a.role !== "owner") whose = ` · shared, ${a.role}`;
    return `${a.name} · ${a.kind}${whose}`;
  }

  private key(): string {
    return `${KEY}.${this.userId}`;
  }
}
