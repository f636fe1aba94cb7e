// Sign-in (user name and password) and, when an admin opened self-registration, sign-up; refusals shown as the server words them.

import type { App } from "../app";
import { ApiError } from "../api/http";
import type { RegistrationStatus } from "../api/types";
import { Disposer, fill, h } from "../ui/dom";

/** The browser's own time zone (UTC when it cannot tell). */
function browserZone(): string {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  } catch {
    return "UTC";
  }
}

/** Every IANA zone the browser knows, its own first (the server checks the choice against its own tz database). */
function zones(own: string): string[] {
  let all: string[] = [];
  try {
    all = Intl.supportedValuesOf("timeZone");
  } catch {
    /* an older browser: the few below */
  }
  return [...new Set([own, "UTC", ...all, "Europe/London", "America/New_York", "Asia/Tokyo"])];
}

export function loginPage(app: App, _d: Disposer): HTMLElement {
  const wrap = h("div", { class: "login-wrap" });
  let status: RegistrationStatus = { open: false };
  const join = h("p", { class: "muted switch", hidden: true, "data-testid": "join" }, "New here? ",
    h("button", { type: "button", class: "link", onclick: () => fill(wrap, signUpForm(app, status, signIn)) }, "Create an account"));
  const signIn = (): void => fill(wrap, signInForm(app, join));
  signIn();
  app.session.registration().then((s) => {
    status = s;
    join.hidden = !s.open;
  }, () => undefined); // unknown: sign-in only, as when closed
  return wrap;
}

function signInForm(app: App, join: HTMLElement): HTMLElement {
  const error = h("p", { class: "error", role: "alert", "data-testid": "login-error" }, app.session.endedBecause ? `Signed out: ${app.session.endedBecause}` : "");
  const user = h("input", { name: "username", autocomplete: "username", required: true, autofocus: true });
  const pass = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const button = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h(
    "form",
    { class: "card login", "aria-label": "sign in" },
    h("h1", {}, "coinwire"),
    h("label", {}, "User name", user),
    h("label", {}, "Password", pass),
    button,
    error,
    join,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    button.disabled = true;
    error.textContent = "";
    try {
      await app.session.login(user.value.trim(), pass.value);
    } catch (err) {
      const a = err as ApiError;
      error.textContent = a.code === "login_locked" ? `${a.message} (too many failed attempts; wait and retry)` : a.message;
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

function signUpForm(app: App, status: RegistrationStatus, back: () => void): HTMLElement {
  const min = status.password_min_length ?? 8;
  const max = status.password_max_length ?? 256;
  const own = browserZone();
  const currencies = status.currencies?.length ? status.currencies : ["USD"];
  const error = h("p", { class: "error", role: "alert", "data-testid": "register-error" });
  const user = h("input", { name: "username", autocomplete: "username", autocapitalize: "none", spellcheck: "false", required: true,
    autofocus: true, maxlength: 64, "aria-describedby": "username-rules" });
  const pass = h("input", { name: "new-password", type: "password", autocomplete: "new-password", required: true, minlength: min, maxlength: max });
  const again = h("input", { name: "repeat-password", type: "password", autocomplete: "new-password", required: true, minlength: min, maxlength: max });
  const tz = h("select", { name: "time_zone" }, ...zones(own).map((z) => h("option", { value: z, selected: z === own }, z)));
  const currency = h("select", { name: "currency" }, ...currencies.map((c) => h("option", { value: c, selected: c === "USD" }, c)));
  const button = h("button", { type: "submit", class: "primary" }, "Create account");
  const form = h(
    "form",
    { class: "card login", "aria-label": "create an account" },
    h("h1", {}, "Create an account"),
    h("label", {}, "User name", user, h("small", { id: "username-rules", class: "muted" }, "2 to 64 characters: lower-case letters, digits, _ . -")),
    h("label", {}, `Password (at least ${min} characters)`, pass),
    h("label", {}, "Repeat password", again),
    h("label", {}, "Time zone", tz),
    h("label", {}, "Show values in", currency),
    button,
    error,
    h("p", { class: "muted switch" }, "Already have an account? ", h("button", { type: "button", class: "link", onclick: back }, "Sign in")),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.textContent = "";
    if (pass.value !== again.value) {
      error.textContent = "The two passwords differ.";
      again.focus();
      return;
    }
    button.disabled = true;
    try {
      await app.session.register({ username: user.value.trim(), password: pass.value, time_zone: tz.value, currency: currency.value });
    } catch (err) {
      const a = err as ApiError;
      error.textContent = a.code === "registration_limited" ? `${a.message} (too many sign-ups from here; wait and retry)` : a.message;
    } finally {
      button.disabled = false;
    }
  });
  return form;
}
