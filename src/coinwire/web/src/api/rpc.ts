// JSON-RPC 2.0 over the /rpc WebSocket: calls with ids, notifications by method, automatic
// reconnect with backoff, and subscriptions that are made again on every new connection.

import { ApiError } from "./http";
import { Signal } from "../ui/dom";

type Notify = (params: any) => void;

interface Pending {
  resolve: (v: any) => void;
  reject: (e: Error) => void;
  timer: number;
}

/** Something a connection must (re)establish whenever it opens: channels, an OHLCV stream. */
export interface Standing {
  open(rpc: Rpc): Promise<void>;
  close?(rpc: Rpc): Promise<void>;
}

export type ConnState = "connecting" | "open" | "closed";

export class Rpc {
  readonly state = new Signal<ConnState>("closed");
  private ws: WebSocket | null = null;
  private nextId = 1;
  private pending = new Map<number, Pending>();
  private listeners = new Map<string, Set<Notify>>();
  private standing = new Set<Standing>();
  private waiters: (() => void)[] = [];
  private retry = 0;
  private timer = 0;
  private stopped = true;

  constructor(private token: () => Promise<string>) {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    void this.connect();
  }

  stop(): void {
    this.stopped = true;
    window.clearTimeout(this.timer);
    this.ws?.close(1000);
    this.ws = null;
    this.standing.clear();
    this.state.set("closed");
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    this.state.set("connecting");
    let token: string;
    try {
      token = await this.token();
    } catch {
      this.reconnectLater();
      return;
    }
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/rpc?access_token=${encodeURIComponent(token)}`);
    this.ws = ws;
    ws.onopen = () => {
      this.retry = 0;
      this.state.set("open");
      for (const w of this.waiters.splice(0)) w();
      for (const s of this.standing) s.open(this).catch((e) => console.warn("re-subscribe failed", e));
    };
    ws.onmessage = (event) => this.receive(String(event.data));
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      for (const [id, p] of this.pending) {
        window.clearTimeout(p.timer);
        p.reject(new ApiError(0, "connection_lost", "the connection to the server dropped; retrying"));
        this.pending.delete(id);
      }
      this.reconnectLater();
    };
  }

  private reconnectLater(): void {
    if (this.stopped) return;
    this.state.set("connecting");
    const base = Math.min(10_000, 500 * 2 ** this.retry++);
    this.timer = window.setTimeout(() => void this.connect(), base / 2 + Math.random() * (base / 2));
  }

  private receive(text: string): void {
    let messages: any;
    try {
      messages = JSON.parse(text);
    } catch {
      return;
    }
    for (const m of Array.isArray(messages) ? messages : [messages]) {
      if (m.id !== undefined && m.id !== null && this.pending.has(m.id)) {
        const p = this.pending.get(m.id)!;
        this.pending.delete(m.id);
        window.clearTimeout(p.timer);
        if (m.error) {
          const data = (m.error.data ?? {}) as Record<string, unknown>;
          p.reject(new ApiError(m.error.code, String(data.code ?? m.error.code), String(data.message ?? m.error.message), data));
        } else p.resolve(m.result);
      } else if (typeof m.method === "string") {
        for (const fn of this.listeners.get(m.method) ?? []) fn(m.params);
      }
    }
  }

  private opened(): Promise<void> {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Call a method (waits for the connection); rejects with the server's error code and message. */
  async call<T = any>(method: string, params: Record<string, unknown> = {}, timeoutMs = 15_000): Promise<T> {
    await this.opened();
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = window.setTimeout(() => {
        this.pending.delete(id);
        reject(new ApiError(0, "timeout", `${method} got no answer in ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.ws!.send(JSON.stringify({ jsonrpc: "2.0", id, method, params }));
    });
  }

  /** Listen to a notification method (order, trade, ticker, ohlcv, exchstatus...); returns the undo. */
  on(method: string, fn: Notify): () => void {
    let set = this.listeners.get(method);
    if (!set) this.listeners.set(method, (set = new Set()));
    set.add(fn);
    return () => set!.delete(fn);
  }

  /** Keep `s` established on this and every later connection; returns the function that ends it. */
  keep(s: Standing): () => void {
    this.standing.add(s);
    if (this.state.value === "open") s.open(this).catch((e) => console.warn("subscribe failed", e));
    return () => {
      this.standing.delete(s);
      if (this.state.value === "open" && s.close) s.close(this).catch(() => undefined);
    };
  }
}

/**
 * A stream whose feeder went away: the server ends it with `ended: "gateway_unavailable"` (an api replica lost the
 * gateway's process that fed it), or refuses it with that code while none serves. It is opened again a little later,
 * as long as it is still wanted (`wanted`), so a chart recovers by itself once another process serves.
 */
export const FEEDER_GONE = "gateway_unavailable";
export function reopenLater(rpc: Rpc, s: Standing, wanted: () => boolean, delayMs = 2000): void {
  window.setTimeout(() => {
    if (wanted() && rpc.state.value === "open") s.open(rpc).catch(() => undefined);
  }, delayMs);
}

/** Channels (`ticker` with patterns, `exchstatus`...) made again after every reconnect. */
export function channels(names: string[], tickers?: string[]): Standing {
  return {
    open: (rpc) => rpc.call("subscribe", tickers ? { channels: names, tickers } : { channels: names }),
    close: (rpc) => rpc.call("unsubscribe", { channels: names }),
  };
}

export type Candle = [number, number, number, number, number, number];

export interface OhlcvSnapshot {
  exchange: string;
  symbol: string;
  timeframe: string;
  tz: string;
  candles: Candle[];
  subscription: number;
}

/** A live OHLCV stream: `history` at every (re)subscription (so a gap after a reconnect fills), then forming candles. */
export function ohlcvStream(
  rpc: Rpc,
  params: { exchange: string; symbol: string; timeframe: string; tz: string },
  history: (s: OhlcvSnapshot) => void,
  candle: (c: Candle) => void,
  failed: (e: Error) => void,
): () => void {
  let sub: number | null = null;
  const off = rpc.on("ohlcv", (p) => {
    if (p.subscription === sub) candle(p.candle as Candle);
  });
  const end = rpc.keep({
    open: async (r) => {
      try {
        const snap = await r.call<OhlcvSnapshot>("subscribe_ohlcv", params);
        sub = snap.subscription;
        history(snap);
      } catch (e) {
        failed(e as Error);
      }
    },
    close: async (r) => {
      if (sub !== null) await r.call("unsubscribe_ohlcv", { subscription: sub });
    },
  });
  return () => {
    off();
    end();
  };
}
