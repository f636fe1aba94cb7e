// Sign-in: user name and password to /api/v1/auth/login; refusals shown as the server words them.

import type { App } from "../app";
import { ApiError } from "../api/http";
import { Disposer, h } from "../ui/dom";

export function loginPage(app: App, _d: Disposer): HTMLElement {
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
  return h("div", { class: "login-wrap" }, form);
}
