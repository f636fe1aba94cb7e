// Portfolio candles over the wire: the REST history and the live `subscribe_portfolio_ohlcv` stream.

import { ApiError, type Http } from "./http";
import { FEEDER_GONE, reopenLater, type Candle, type Rpc, type Standing } from "./rpc";
import { toCandles, type ScopeRef } from "../portfolio";

export interface PortfolioQuery extends ScopeRef {
  timeframe: string;
  tz: string;
}

export interface PortfolioSnapshot {
  candles: Candle[];
  currency: string | null;
  subscription: number;
}

function path(q: ScopeRef, what: string): string {
  return `/api/v1/portfolio/${encodeURIComponent(q.scope)}/${encodeURIComponent(q.id)}/${what}`;
}

/** A portfolio's candles once, `GET /api/v1/portfolio/{scope}/{id}/ohlcv` (values exact decimal strings, drawn as numbers). */
export async function portfolioCandles(http: Http, q: PortfolioQuery): Promise<Candle[]> {
  return toCandles(await http.get<(string | number)[][]>(path(q, "ohlcv"), { timeframe: q.timeframe, tz: q.tz }));
}

/** Another portfolio route of the same scope (`daily`, `balance`). */
export function portfolioGet<T>(http: Http, q: ScopeRef, what: string, query?: Record<string, string | number>): Promise<T> {
  return http.get<T>(path(q, what), query);
}

/**
 * A live portfolio stream, as `ohlcvStream` is for markets: `history` at every (re)subscription (a
 * gap after a reconnect fills), then the forming candle on every `portfolio_ohlcv` push (values are JSON numbers
 * holding every digit of the exact decimal; drawn as floats, which a chart's pixels cannot tell apart).
 */
export function portfolioStream(
  rpc: Rpc,
  q: PortfolioQuery,
  history: (s: PortfolioSnapshot) => void,
  candle: (c: Candle) => void,
  failed: (e: Error) => void,
): () => void {
  let sub: number | null = null;
  let wanted = true;
  const off = rpc.on("portfolio_ohlcv", (p: { subscription?: number; candle?: (string | number)[]; ended?: string }) => {
    if (p.subscription !== sub) return;
    // the portfolio may no longer be read (a grant taken back): the server ends the stream and says so
    if (p.ended === FEEDER_GONE) {
      sub = null;
      return reopenLater(rpc, standing, () => wanted && sub === null);
    }
    if (p.ended) return failed(new Error(p.ended === "not_found" ? "this portfolio is no longer yours to see" : `stream ended: ${p.ended}`));
    if (!p.candle) return;
    const [c] = toCandles([p.candle]);
    if (c) candle(c);
  });
  const standing: Standing = {
    open: async (r) => {
      sub = null; // a new connection, or a stream the server ended: the old id names nothing now
      try {
        const snap = await r.call<{ candles: (string | number)[][]; currency?: string; subscription: number }>(
          "subscribe_portfolio_ohlcv", { scope: q.scope, id: q.id, timeframe: q.timeframe, tz: q.tz });
        sub = snap.subscription;
        history({ candles: toCandles(snap.candles), currency: snap.currency ?? null, subscription: snap.subscription });
      } catch (e) {
        if (e instanceof ApiError && e.code === FEEDER_GONE) reopenLater(r, standing, () => wanted && sub === null);
        else failed(e as Error);
      }
    },
    close: async (r) => {
      if (sub !== null) await r.call("unsubscribe_portfolio_ohlcv", { subscription: sub });
    },
  };
  const end = rpc.keep(standing);
  return () => {
    wanted = false;
    off();
    end();
  };
}
