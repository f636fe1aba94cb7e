// Analyser outputs over the wire: `subscribe_analysis` (stored values, then live ones) kept across reconnects.

import { ApiError } from "./http";
import { FEEDER_GONE, reopenLater, type Rpc, type Standing } from "./rpc";
import { toPoints, type Point } from "../analysis";

export interface AnalysisQuery {
  series: string;
  indicator: string;
  params: number[];
}

/**
 * One analyser stream: `history` at every (re)subscription with the stored values, then `value` for each
 * `analysis` push of this subscription; `failed` when the server refuses it or ends it (the series no longer
 * readable). The returned function unsubscribes.
 */
export function analysisStream(
  rpc: Rpc,
  q: AnalysisQuery,
  history: (points: Point[]) => void,
  value: (p: Point) => void,
  failed: (e: Error) => void,
): () => void {
  let sub: number | null = null;
  let wanted = true;
  const off = rpc.on("analysis", (p: { subscription?: number; time?: number; value?: number; ended?: string }) => {
    if (p.subscription !== sub) return;
    if (p.ended === FEEDER_GONE) {
      sub = null;
      return reopenLater(rpc, standing, () => wanted && sub === null);
    }
    if (p.ended) return failed(new Error(p.ended === "not_found" ? "this series is no longer yours to see" : `stream ended: ${p.ended}`));
    if (typeof p.time === "number" && typeof p.value === "number") value([p.time, p.value]);
  });
  const standing: Standing = {
    open: async (r) => {
      sub = null; // a new connection, or a stream the server ended: the old id names nothing now
      try {
        const snap = await r.call<{ values: unknown[][]; subscription: number }>(
          "subscribe_analysis", { series: q.series, indicator: q.indicator, params: q.params });
        sub = snap.subscription;
        history(toPoints(snap.values));
      } catch (e) {
        if (e instanceof ApiError && e.code === FEEDER_GONE) reopenLater(r, standing, () => wanted && sub === null);
        else failed(e as Error);
      }
    },
    close: async (r) => {
      if (sub !== null) await r.call("unsubscribe_analysis", { subscription: sub });
    },
  };
  const end = rpc.keep(standing);
  return () => {
    wanted = false;
    off();
    end();
  };
}
