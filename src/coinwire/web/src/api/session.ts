// The signed-in session: sign-in and sign-up, tokens in localStorage, rotated refresh tokens, one refresh at a time across tabs.
//
// The server rotates the refresh token on every refresh and revokes the whole session when a
// spent one is presented again, so two tabs must never refresh with the same token: refreshes
// run under a Web Lock, and a tab that waited re-reads the stored pair (another tab may have
// refreshed it already) before asking the server.

import { ApiError, errorOf } from "./http";
import type { RegistrationStatus } from "./types";
import { Signal } from "../ui/dom";

export interface Tokens {
  access: string;
  refresh: string;
  expiresAt: number; // ms since epoch
}

interface LoginAnswer {
  access_token: string;
  refresh_token: string;
  expires_in: number;
}

const KEY = "coinwire.session";
const EARLY_MS = 60_000; // refresh this long before the access token expires

function load(): Tokens | null {
  try {
    const raw = localStorage.getItem(KEY);
    return raw ? (JSON.parse(raw) as Tokens) : null;
  } catch {
    return null;
  }
}

function tokensOf(a: LoginAnswer): Tokens {
  return { access: a.access_token, refresh: a.refresh_token, expiresAt: Date.now() + a.expires_in * 1000 };
}

async function postJson(path: string, body: unknown, token?: string): Promise<Response> {
  const headers: Record<string, string> = { "Content-Type": "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  try {
    return await fetch(path, { method: "POST", headers, body: JSON.stringify(body) });
  } catch {
    throw new ApiError(0, "network_error", "cannot reach the coinwire server; is it running?");
  }
}

export class Session {
  /** The current tokens (null: signed out). Watch it to follow sign-in, sign-out and other tabs. */
  readonly tokens = new Signal<Tokens | null>(load());
  /** Why the session ended, when the server ended it (shown on the sign-in page). */
  endedBecause = "";

  constructor() {
    window.addEventListener("storage", (e) => {
      if (e.key === KEY) this.tokens.set(load());
    });
  }

  get signedIn(): boolean {
    return this.tokens.value !== null;
  }

  async login(username: string, password: string): Promise<void> {
    const response = await postJson("/api/v1/auth/login", { username, password });
    if (!response.ok) throw await errorOf(response);
    this.endedBecause = "";
    this.store(tokensOf((await response.json()) as LoginAnswer));
  }

  /** Whether this server lets anyone create an account (asked before sign-in: the route is public). */
  async registration(): Promise<RegistrationStatus> {
    let response: Response;
    try {
      response = await fetch("/api/v1/auth/registration");
    } catch {
      throw new ApiError(0, "network_error", "cannot reach the coinwire server; is it running?");
    }
    if (!response.ok) throw await errorOf(response);
    return (await response.json()) as RegistrationStatus;
  }

  /** Create an account (when the server's self-registration is open) and sign in with it. */
  async register(account: { username: string; password: string; time_zone: string; currency: string }): Promise<void> {
    const response = await postJson("/api/v1/auth/register", account);
    if (!response.ok) throw await errorOf(response);
    this.endedBecause = "";
    this.store(tokensOf((await response.json()) as LoginAnswer));
  }

  async logout(): Promise<void> {
    const t = this.tokens.value;
    this.store(null);
    if (t) await postJson("/api/v1/auth/logout", {}, t.access).catch(() => undefined);
  }

  /** A valid access token: the stored one, or a fresh one when it is about to expire. */
  async accessToken(): Promise<string> {
    const t = this.tokens.value;
    if (!t) throw new ApiError(401, "unauthenticated", "sign in first");
    return t.expiresAt - Date.now() > EARLY_MS ? t.access : this.refresh();
  }

  /** Rotate the refresh token (once across all tabs) and answer the new access token. */
  async refresh(): Promise<string> {
    const spent = this.tokens.value?.refresh;
    const run = async (): Promise<string> => {
      const now = load();
      if (!now) throw new ApiError(401, "unauthenticated", "signed out");
      if (now.refresh !== spent && now.expiresAt - Date.now() > EARLY_MS) {
        this.tokens.set(now); // another tab refreshed while we waited
        return now.access;
      }
      const response = await postJson("/api/v1/auth/refresh", { refresh_token: now.refresh });
      if (!response.ok) {
        const err = await errorOf(response);
        if (response.status === 401) this.expire(err.message);
        throw err;
      }
      const fresh = tokensOf((await response.json()) as LoginAnswer);
      this.store(fresh);
      return fresh.access;
    };
    return navigator.locks ? navigator.locks.request("coinwire-refresh", run) : run();
  }

  /** The server ended the session (expired, revoked, user disabled): back to sign-in with its reason. */
  expire(reason: string): void {
    if (!this.tokens.value) return;
    this.endedBecause = reason;
    this.store(null);
  }

  private store(t: Tokens | null): void {
    if (t) localStorage.setItem(KEY, JSON.stringify(t));
    else localStorage.removeItem(KEY);
    this.tokens.set(t);
  }
}
