// The browser session: the access token in memory only; the refresh token in an HttpOnly
// cookie the gateway sets, which no script here can read. Refreshing and logging out send
// the CSRF token (the `vps_csrf` cookie, readable) back in `X-CSRF-Token`.

import type { components } from "./api/schema";

export type Account = components["schemas"]["Account"];
type BrowserSession = components["schemas"]["BrowserSession"];

export interface Session {
  accessToken: string;
  /** When the access token expires (ms since the epoch). */
  expiresAt: number;
  csrfToken: string;
  user: Account;
}

/** Refresh this long before the access token expires. */
const EARLY_MS = 30_000;

/** A login that failed, with the gateway's message. */
export class LoginError extends Error {}

/** A logout the gateway did not confirm: the session may still be alive. */
export class LogoutError extends Error {}

/** The `vps_csrf` cookie's value in a `document.cookie` string. */
export function csrfFromCookies(cookies: string): string | null {
  for (const pair of cookies.split(";")) {
    const [name, ...rest] = pair.trim().split("=");
    if (name === "vps_csrf") {
      const value = rest.join("=");
      return value === "" ? null : value;
    }
  }
  return null;
}

export class SessionKeeper {
  current: Session | null = null;
  private refreshing: Promise<Session | null> | null = null;

  constructor(
    private readonly send: typeof fetch = (input, init) => fetch(input, init),
    private readonly cookies: () => string = () => document.cookie,
    private readonly now: () => number = () => Date.now(),
  ) {}

  /** Logs in with a username or email and a password. */
  async login(login: string, password: string): Promise<Session> {
    const response = await this.send("/api/auth/session", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ login, password }),
      credentials: "same-origin",
    });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw new LoginError(typeof body.error === "string" ? body.error : `login failed (${response.status})`);
    }
    return this.keep(await response.json());
  }

  /**
   * A session from the refresh cookie (a page loaded afresh, or a token about to expire),
   * or null when there is none. Calls that overlap share one refresh: a refresh token works
   * once, and presenting it twice would end the session.
   */
  resume(): Promise<Session | null> {
    this.refreshing ??= this.refresh().finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  /** A valid access token, refreshed first when it is about to expire; null when logged out. */
  async token(): Promise<string | null> {
    const session = this.current;
    if (session && session.expiresAt - EARLY_MS > this.now()) {
      return session.accessToken;
    }
    return (await this.resume())?.accessToken ?? null;
  }

  /** Ends the session on the server and forgets it here. */
  logout(): Promise<void> {
    return this.end("/api/auth/session");
  }

  /** Ends every session of the user, on every device, and forgets this one. */
  logoutEverywhere(): Promise<void> {
    return this.end("/api/auth/session?everywhere=true");
  }

  /**
   * Asks the gateway to end the session (with a fresh access token: the one in memory may
   * have expired while the tab sat open), and forgets it only once the gateway has: a
   * failed logout must not look like a successful one, since the refresh cookie would log
   * the next page load straight back in.
   */
  private async end(url: string): Promise<void> {
    const token = await this.token();
    const session = this.current;
    if (!token || !session) {
      this.current = null;
      return;
    }
    const response = await this.send(url, {
      method: "DELETE",
      headers: { authorization: `Bearer ${token}`, "x-csrf-token": session.csrfToken },
      credentials: "same-origin",
    }).catch(() => null);
    if (!response?.ok) throw new LogoutError("The gateway could not be reached to log out; try again.");
    this.current = null;
  }

  private async refresh(): Promise<Session | null> {
    const csrf = this.current?.csrfToken ?? csrfFromCookies(this.cookies());
    if (!csrf) {
      this.current = null;
      return null;
    }
    const response = await this.send("/api/auth/session/refresh", {
      method: "POST",
      headers: { "x-csrf-token": csrf },
      credentials: "same-origin",
    });
    if (!response.ok) {
      this.current = null;
      return null;
    }
    return this.keep(await response.json());
  }

  private keep(body: BrowserSession): Session {
    this.current = {
      accessToken: body.accessToken,
      expiresAt: this.now() + body.expiresIn * 1000,
      csrfToken: body.csrfToken,
      user: body.user,
    };
    return this.current;
  }
}
