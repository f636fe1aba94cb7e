// Notifications: the user's channels (e-mail, Telegram, webhook), which events go to which, a test per channel, and dead letters.

import type { App } from "../app";
import type { DeadLetter, NotificationSettings, TestAnswer } from "../api/types";
import * as fmt from "../format";
import { Disposer, fill, h, placeholder } from "../ui/dom";

const PATH = "/api/v1/me/notifications";
const CHANNELS: [Channel, string][] = [["email", "E-mail"], ["telegram", "Telegram"], ["webhook", "Webhook"]];
type Channel = "email" | "telegram" | "webhook";
/** Every event the server sends (services/notifications/channels.EVENTS), its label and when it is sent (docs/NOTIFICATIONS.md). */
export const EVENTS: [event: string, label: string, description: string][] = [
  ["order_filled", "Order filled", "each fill of one of your orders"],
  ["order_triggered", "Order triggered", "a stop, take-profit or trailing stop fired and became its market or limit order (shared accounts' too)"],
  ["order_done", "Order done", "an order filled, cancelled, expired or rejected"],
  ["trade_receipt", "Trade receipt", "an order done with any fill, a partly filled then cancelled one included"],
  ["run_started", "Run started", "a run you started began"],
  ["run_stopped", "Run stopped", "a run you started finished or was stopped"],
  ["run_failed", "Run failed", "a run you started failed"],
  ["rule_fired", "Rule fired", "a rule of yours fired"],
  ["import_finished", "Import finished", "an import of yours finished"],
  ["daily_stats", "Daily stats", "your day's figures"],
  ["exchange_degraded", "Exchange degraded", "an exchange went degraded or offline"],
];

export function notificationsPage(app: App, _p: Record<string, string>, _d: Disposer): HTMLElement {
  const body = h("div", { class: "page notifications" }, placeholder("loading", "Loading your notification settings…"));
  const dead = h("section", { class: "card", "data-testid": "dead-letters" }, h("h3", {}, "Dead letters"), placeholder("loading", "Loading…"));
  const loadDead = (): void => void deadLetters(app, dead, loadDead);
  app.http.get<NotificationSettings>(PATH).then(
    (s) => { fill(body, settingsForm(app, s, loadDead), dead); loadDead(); },
    (e: Error) => fill(body, placeholder("error", `Notification settings could not be read: ${e.message}`)),
  );
  return body;
}

/** A write-only secret: an empty box that says "set — replace" when one is stored; empty on save keeps the stored one. */
interface Secret {
  el: HTMLElement;
  input: HTMLInputElement;
  stored: () => boolean; // the server holds one
  mark: (stored: boolean) => void; // after a save: what the server now holds
}

function secretInput(name: string, label: string, stored: string | null | undefined): Secret {
  let isSet = !!stored; // the API answers "set" for a stored one, never the secret itself
  const input = h("input", { type: "password", name, "aria-label": label, autocomplete: "new-password", "data-secret": name });
  const state = h("small", { class: "muted", "data-testid": `${name}-state` });
  const show = () => {
    input.placeholder = isSet ? "set — replace" : "not set";
    state.textContent = isSet ? "set — type a new one to replace it" : "";
  };
  show();
  return { el: h("label", {}, label, input, state), input, stored: () => isSet, mark: (v) => { isSet = v; show(); } };
}

function settingsForm(app: App, s: NotificationSettings, afterSave: () => void): HTMLElement {
  const c = s.channels ?? {};
  const address = h("input", { type: "email", name: "email_address", "aria-label": "e-mail address", value: c.email?.address ?? "", placeholder: "you@example.org", autocomplete: "email" });
  const token = secretInput("telegram_bot_token", "Bot token", c.telegram?.bot_token);
  const chat = h("input", { name: "telegram_chat_id", "aria-label": "chat id", value: c.telegram?.chat_id === null || c.telegram?.chat_id === undefined ? "" : String(c.telegram.chat_id), placeholder: "e.g. 123456789", autocomplete: "off" });
  const url = h("input", { type: "url", name: "webhook_url", "aria-label": "webhook URL", value: c.webhook?.url ?? "", placeholder: "https://example.org/hooks/coinwire", autocomplete: "off" });
  const secret = secretInput("webhook_secret", "Signing secret (HMAC-SHA256)", c.webhook?.secret);
  const results: Record<Channel, HTMLElement> = {
    email: h("span", { class: "result", "data-testid": "test-result-email", "aria-live": "polite" }),
    telegram: h("span", { class: "result", "data-testid": "test-result-telegram", "aria-live": "polite" }),
    webhook: h("span", { class: "result", "data-testid": "test-result-webhook", "aria-live": "polite" }),
  };
  const error = h("p", { class: "error", role: "alert", "data-testid": "notifications-error" });
  let dirty = false;

  // the event x channel matrix
  const boxes = new Map<string, HTMLInputElement>(); // "event:channel"
  const chosen = s.events ?? {};
  const matrix = h("div", { class: "table-wrap" }, h("table", { class: "grid matrix", "data-testid": "event-matrix" },
    h("thead", {}, h("tr", {}, h("th", {}, "Event"), ...CHANNELS.map(([, label]) => h("th", { class: "center" }, label)))),
    h("tbody", {}, ...EVENTS.map(([event, label, about]) => h("tr", { "data-event": event }, h("td", {}, label, " ", h("small", { class: "muted mono code" }, event),
      h("small", { class: "muted about" }, about)),
      ...CHANNELS.map(([channel, clabel]) => {
        const box = h("input", { type: "checkbox", "aria-label": `${label} by ${clabel}`, "data-event": event, "data-channel": channel });
        box.checked = (chosen[event] ?? []).includes(channel);
        boxes.set(`${event}:${channel}`, box);
        return h("td", { class: "center" }, box);
      }))))));

  const channelCard = (channel: Channel, title: string, ...fields: HTMLElement[]) => h("fieldset", { class: "channel", "data-channel": channel },
    h("legend", {}, title), ...fields,
    h("div", { class: "row" }, h("button", { type: "button", class: "ghost", "data-test-channel": channel, onclick: () => void test(channel) }, "Send test"), results[channel]));

  const read = (): NotificationSettings | string => {
    const channels: NotificationSettings["channels"] = {};
    const a = address.value.trim();
    if (a) {
      if (!/^[^@\s]+@[^@\s]+$/.test(a)) return `"${a}" is not an e-mail address.`;
      channels.email = { address: a };
    }
    const t = token.input.value.trim(), id = chat.value.trim();
    if (t || id || token.stored()) {
      if (!id) return "Telegram needs the chat id as well as the bot token.";
      if (!t && !token.stored()) return "Telegram needs the bot token (from @BotFather) as well as the chat id.";
      channels.telegram = t ? { bot_token: t, chat_id: id } : { chat_id: id }; // no token: the stored one is kept
    }
    const u = url.value.trim(), sec = secret.input.value;
    if (u || sec) {
      if (!u) return "A webhook needs its URL.";
      channels.webhook = sec ? { url: u, secret: sec } : { url: u };
    }
    const events: Record<string, string[]> = {};
    for (const [event] of EVENTS) {
      const on = CHANNELS.map(([ch]) => ch).filter((ch) => boxes.get(`${event}:${ch}`)!.checked);
      if (on.length) events[event] = on;
    }
    for (const [event, on] of Object.entries(events)) {
      const missing = on.filter((ch) => !channels[ch as Channel]);
      if (missing.length) return `${EVENTS.find(([e]) => e === event)![1]} is sent by ${missing.join(" and ")}, which is not set up.`;
    }
    return { channels, events };
  };

  const show = (saved: NotificationSettings): void => {
    const sc = saved.channels ?? {};
    address.value = sc.email?.address ?? "";
    chat.value = sc.telegram?.chat_id === null || sc.telegram?.chat_id === undefined ? "" : String(sc.telegram.chat_id);
    url.value = sc.webhook?.url ?? "";
    token.input.value = secret.input.value = "";
    token.mark(!!sc.telegram?.bot_token);
    secret.mark(!!sc.webhook?.secret);
    for (const [key, box] of boxes) {
      const [event, channel] = key.split(":");
      box.checked = (saved.events?.[event] ?? []).includes(channel);
    }
    dirty = false;
  };

  const save = async (): Promise<boolean> => {
    error.textContent = "";
    const body = read();
    if (typeof body === "string") {
      error.textContent = body;
      return false;
    }
    saveBtn.disabled = true;
    try {
      show(await app.http.put<NotificationSettings>(PATH, body));
      app.toast("Notification settings saved.");
      afterSave();
      return true;
    } catch (e) {
      error.textContent = (e as Error).message;
      return false;
    } finally {
      saveBtn.disabled = false;
    }
  };

  const test = async (channel: Channel): Promise<void> => {
    const out = results[channel];
    if (dirty && !(await save())) return; // a test of what is on screen: the changes are saved first
    out.className = "result";
    out.textContent = "sending…";
    try {
      const answer = await app.http.post<TestAnswer>(`${PATH}/test`, { channel });
      out.className = `result ${answer.sent ? "ok" : "error"}`;
      out.textContent = answer.sent ? "Sent: check that it arrived." : `Not sent: ${answer.reason ?? "no reason given"}`;
    } catch (e) {
      out.className = "result error";
      out.textContent = (e as Error).message;
    }
    afterSave(); // a failed test may have left a dead letter
  };

  const saveBtn = h("button", { type: "submit", class: "primary" }, "Save");
  const form = h("form", { class: "card notify", "aria-label": "notification settings", "data-testid": "notifications-form" },
    h("h3", {}, "Channels"),
    h("p", { class: "muted" }, "Where coinwire tells you about your orders, runs and exchanges. Secrets are write-only: the server keeps them and never shows them again."),
    h("div", { class: "channels" },
      channelCard("email", "E-mail", h("label", {}, "Address", address)),
      channelCard("telegram", "Telegram", token.el, h("label", {}, "Chat id", chat)),
      channelCard("webhook", "Webhook", h("label", {}, "URL (http or https)", url), secret.el)),
    h("h3", {}, "Events"),
    h("p", { class: "muted" }, "Tick the channels each event goes to."),
    matrix, error, h("div", { class: "row" }, saveBtn));
  form.addEventListener("input", () => (dirty = true));
  form.addEventListener("change", () => (dirty = true));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void save();
  });
  return form;
}

/** The notifications that failed every retry: what, where, why, and a retry button each. */
async function deadLetters(app: App, box: HTMLElement, reload: () => void): Promise<void> {
  let list: DeadLetter[];
  try {
    list = (await app.http.get<{ dead_letters: DeadLetter[] }>(`${PATH}/dead_letters`)).dead_letters;
  } catch (e) {
    fill(box, h("h3", {}, "Dead letters"), placeholder("error", `Dead letters could not be read: ${(e as Error).message}`));
    return;
  }
  if (!list.length) {
    fill(box, h("h3", {}, "Dead letters"), placeholder("empty", "None: every notification was delivered."));
    return;
  }
  const retry = async (d: DeadLetter): Promise<void> => {
    try {
      await app.http.post(`${PATH}/dead_letters/${encodeURIComponent(String(d.id))}/retry`);
      app.toast("Sent again.");
    } catch (e) {
      app.toast((e as Error).message, "error");
    }
    reload();
  };
  fill(box, h("h3", {}, `Dead letters (${list.length})`),
    h("p", { class: "muted" }, "Notifications that failed every retry. Fix the channel, then retry."),
    h("div", { class: "table-wrap" }, h("table", { class: "grid" },
      h("thead", {}, h("tr", {}, ...["Parked", "Channel", "Event", "What", "Attempts", "Last error", ""].map((t) => h("th", {}, t)))),
      h("tbody", {}, ...list.map((d) => h("tr", { "data-testid": "dead-letter", "data-dead-letter": String(d.id) },
        h("td", {}, fmt.time(d.updated_at / 1e9)), h("td", {}, d.channel), h("td", {}, d.event), h("td", { class: "wrap" }, d.subject),
        h("td", { class: "num" }, String(d.attempts)),
        h("td", { class: "wrap" }, d.last_error ?? ""),
        h("td", {}, h("button", { type: "button", class: "ghost", "data-action": "retry", onclick: () => void retry(d) }, "Retry"))))))));
}
