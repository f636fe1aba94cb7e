// Importing: a live account's history fetched in the background (trades, deposits, withdrawals, past value), its progress
// live from the `import_progress` channel; the user may leave, and is told when it finishes wherever they are.

import type { App } from "../app";
import type { Account } from "../api/types";
import { progressOf, type ImportProgress } from "../portfolio";
import { Disposer, fill, h, placeholder } from "../ui/dom";

const path = (id: number) => `/api/v1/accounts/${id}/import`;

/** The accounts an import can fetch from: live ones (a paper account's history is already coinwire's own). */
function importable(app: App): Account[] {
  return app.accounts.list.value.filter((a) => a.kind === "live" && (a.role === "owner" || a.role === "admin"));
}

export function importingPage(app: App, params: Record<string, string>, d: Disposer): HTMLElement {
  const list = h("div", { "data-testid": "imports" });
  const draw = () => {
    const accounts = importable(app).filter((a) => !params.id || String(a.id) === params.id);
    fill(list, accounts.length ? accounts.map((a) => importRow(app, d, a))
      : placeholder("empty", "No live account to import from: connect an exchange account first."));
  };
  draw();
  return h("div", { class: "page importing" },
    h("section", { class: "card" }, h("h3", {}, "Import your history"),
      h("p", { class: "muted" }, "Fetches each account's trades, deposits and withdrawals from its exchange and rebuilds its past value, " +
        "so your portfolio chart starts where your trading did. It runs on the server: you may leave this page, and you are told when it finishes. " +
        "Importing again adds nothing twice."),
      list));
}

function importRow(app: App, d: Disposer, a: Account): HTMLElement {
  const bar = h("progress", { max: 1, value: 0, "aria-label": `import progress of ${a.name}`, "data-testid": "import-bar" });
  const words = h("span", { class: "muted", "data-testid": "import-text", "aria-live": "polite" }, "Not imported yet.");
  const button = h("button", { type: "button", class: "primary", "data-testid": "import-start" }, "Import");
  const see = h("a", { href: `/app/portfolio?scope=account&id=${a.id}`, "data-link": true, hidden: true }, "See its portfolio");
  let last: ImportProgress | null = null;
  const show = (p: ImportProgress | null) => {
    // an import's `done` is its last word: a `running` of the same import after it is an answer (the start's, a
    // status read) that left the server before the push that finished it
    if (p && last && p.import_id === last.import_id && last.state === "done" && p.state !== "done") return;
    last = p;
    if (!p) return;
    const { fraction, text } = progressOf(p);
    bar.value = fraction;
    words.textContent = text;
    row.dataset.state = p.state;
    button.textContent = p.state === "failed" ? "Resume" : p.state === "done" ? "Import again" : "Importing…";
    button.disabled = p.state === "running";
    see.hidden = p.state !== "done";
  };
  const read = async () => {
    try {
      show(await app.http.get<ImportProgress | null>(path(a.id)));
    } catch (e) {
      if ((e as { status?: number }).status !== 404) words.textContent = (e as Error).message;
    }
  };
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      show(await app.http.post<ImportProgress>(path(a.id)));
    } catch (e) {
      words.textContent = (e as Error).message;
      button.disabled = false;
    }
  });
  d.add(app.rpc.on("import_progress", (p: ImportProgress) => { if (p.account_id === a.id) show(p); }));
  // the pushes are the live path; a read now and then covers a reconnect's gap
  d.every(5000, () => { if (last?.state === "running") void read(); });
  void read();
  const row = h("div", { class: "import-row", "data-testid": "import-row", "data-account": a.id },
    h("div", { class: "row" }, h("strong", {}, a.name), h("span", { class: "muted" }, ` ${a.exchange}`), button),
    bar, h("div", { class: "row" }, words, see));
  return row;
}
