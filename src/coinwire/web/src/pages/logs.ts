// Logs: recent log messages (admins: the server's warnings and errors and everyone's orders; others: their own), live over `logmessages`.

import type { App } from "../app";
import { channels } from "../api/rpc";
import { time } from "../format";
import { Disposer, fill, h, placeholder } from "../ui/dom";

export interface LogEntry {
  level: string;
  source: string;
  message: string;
  created: number; // seconds since the epoch
  context: Record<string, unknown>;
}

const KEPT = 500; // rows shown; older ones fall off

function key(e: LogEntry): string {
  return `${e.created}|${e.source}|${e.message}`;
}

function contextText(context: Record<string, unknown>): string {
  return Object.entries(context).map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`).join(" ");
}

export function logsPage(app: App, _p: Record<string, string>, d: Disposer): HTMLElement {
  const root = h("div", { class: "page logs", "data-testid": "logs" });
  let entries: LogEntry[] = [];
  const draw = (): void => {
    if (!entries.length) return fill(root, placeholder("empty", "No log messages yet."));
    fill(root, h("section", { class: "card" },
      h("table", { class: "grid" },
        h("thead", {}, h("tr", {}, ...["Time", "Level", "Source", "Message", "Context"].map((t) => h("th", {}, t)))),
        h("tbody", {}, ...entries.map((e) => h("tr", { class: `log ${e.level}`, "data-testid": "log-row" },
          h("td", { class: "time" }, time(e.created)),
          h("td", {}, h("span", { class: `badge ${e.level}` }, e.level)),
          h("td", {}, e.source),
          h("td", {}, e.message),
          h("td", { class: "context" }, contextText(e.context))))))));
  };
  fill(root, placeholder("loading", "Loading log messages…"));
  d.add(app.rpc.on("logmessages", (e: LogEntry) => {
    entries = [e, ...entries].slice(0, KEPT);
    draw();
  }));
  d.add(app.rpc.keep(channels(["logmessages"])));
  app.http.get<{ logs: LogEntry[] }>("/api/v1/logs", { limit: 200 }).then(
    (r) => {
      // a message pushed while the recent ones were read is in both: keep it once
      const seen = new Set(entries.map(key));
      entries = [...entries, ...r.logs.filter((e) => !seen.has(key(e)))].slice(0, KEPT);
      draw();
    },
    (err) => fill(root, placeholder("error", `Log messages could not be read: ${err.message ?? err}`)),
  );
  return root;
}
