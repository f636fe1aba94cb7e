// REST client: JSON in and out, the session's bearer token, one refresh-and-retry on an expired token.

import type { Session } from "./session";

/** A refusal from the server (or the network), with its stable code and the server's own message. */
export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
    public data: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export type Query = Record<string, string | number | boolean | null | undefined>;

export function withQuery(path: string, query?: Query): string {
  if (!query) return path;
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== null && v !== undefined && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

/** The `{"error": {code, message}}` body of a refusal, or a plain description of what went wrong. */
export async function errorOf(response: Response): Promise<ApiError> {
  let body: unknown = null;
  try {
    body = await response.json();
  } catch {
    /* not JSON: a proxy's page */
  }
  const err = (body as { error?: Record<string, unknown> } | null)?.error;
  if (err && typeof err.code === "string") {
    return new ApiError(response.status, err.code, String(err.message ?? err.code), err);
  }
  return new ApiError(response.status, `http_${response.status}`, `the server answered ${response.status} ${response.statusText}`);
}

const KEEPALIVE_BODY_LIMIT = 8 * 1024;

export class Http {
  /** Requests on the wire: aborted at sign-out, before the session's token is revoked (no late 401 for the browser to log). */
  private inFlight = new Set<AbortController>();

  constructor(private session: Session) {
    session.tokens.watch((tokens) => {
      if (tokens !== null) return;
      for (const c of this.inFlight) c.abort();
      this.inFlight.clear();
    });
  }

  async request<T>(method: string, path: string, options: { query?: Query; body?: unknown } = {}): Promise<T> {
    const url = withQuery(path, options.query);
    let response = await this.send(method, url, options.body, await this.session.accessToken());
    if (response.status === 401) {
      const err = await errorOf(response.clone());
      if (err.code === "token_expired" || err.code === "invalid_token") {
        response = await this.send(method, url, options.body, await this.session.refresh());
      }
    }
    if (response.status === 401) {
      const err = await errorOf(response);
      this.session.expire(err.message);
      throw err;
    }
    if (!response.ok) throw await errorOf(response);
    return (await response.json()) as T;
  }

  get<T>(path: string, query?: Query): Promise<T> {
    return this.request<T>("GET", path, { query });
  }
  post<T>(path: string, body?: unknown): Promise<T> {
    return this.request<T>("POST", path, { body });
  }
  put<T>(path: string, body?: unknown): Promise<T> {
    return this.request<T>("PUT", path, { body });
  }
  delete<T>(path: string): Promise<T> {
    return this.request<T>("DELETE", path);
  }

  private async send(method: string, url: string, body: unknown, token: string): Promise<Response> {
    const headers: Record<string, string> = { Authorization: `Bearer ${token}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const controller = new AbortController();
    this.inFlight.add(controller);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    // a small change (a preference, an order) outlives its page: closing the tab or navigating right after a click
    // does not drop it on the way. Browsers cap kept-alive bodies at 64 KiB in flight, so bigger ones go plainly
    const keepalive = method !== "GET" && (payload?.length ?? 0) < KEEPALIVE_BODY_LIMIT;
    try {
      return await fetch(url, { method, headers, body: payload, signal: controller.signal, keepalive });
    } catch {
      if (controller.signal.aborted) throw new ApiError(0, "signed_out", "signed out while the request was on its way");
      throw new ApiError(0, "network_error", "cannot reach the coinwire server; is it running?");
    } finally {
      this.inFlight.delete(controller);
    }
  }
}
