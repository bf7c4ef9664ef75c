import { describe, expect, it } from "vitest";
import { LoginError, LogoutError, SessionKeeper, csrfFromCookies } from "./session";

const user = { id: 7, username: "alice" };

/** A gateway stand-in that answers the session routes as the gateway documents them. */
function gateway() {
  const calls: { url: string; init: RequestInit }[] = [];
  let issued = 0;
  const send = async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const url = String(input);
    calls.push({ url, init });
    const headers = new Headers(init.headers);
    if (url === "/api/auth/session" && init.method === "POST") {
      const body = JSON.parse(String(init.body));
      if (body.password !== "correct horse") {
        return Response.json({ error: "invalid login or password" }, { status: 401 });
      }
    } else if (url === "/api/auth/session/refresh") {
      if (headers.get("x-csrf-token") !== `csrf-${issued}`) {
        return Response.json({ error: "X-CSRF-Token is missing" }, { status: 403 });
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    } else if (init.method === "DELETE") {
      if (headers.get("authorization") !== `Bearer access-${issued}`) {
        return Response.json({ error: "invalid or expired access token" }, { status: 401 });
      }
      return Response.json({ status: "success" });
    }
    issued += 1;
    return Response.json({
      accessToken: `access-${issued}`,
      tokenType: "Bearer",
      expiresIn: 900,
      csrfToken: `csrf-${issued}`,
      user,
    });
  };
  return { calls, send: send as typeof fetch };
}

describe("csrfFromCookies", () => {
  it("finds the cookie by its exact name", () => {
    expect(csrfFromCookies("a=1; vps_csrf=abc; vps_csrf_x=2")).toBe("abc");
    expect(csrfFromCookies("vps_csrf_x=2")).toBeNull();
    expect(csrfFromCookies("vps_csrf=")).toBeNull();
    expect(csrfFromCookies("")).toBeNull();
  });
});

describe("SessionKeeper", () => {
  it("logs in and keeps the access token in memory", async () => {
    const { send } = gateway();
    const keeper = new SessionKeeper(send, () => "", () => 0);
    const session = await keeper.login("alice", "correct horse");
    expect(session.accessToken).toBe("access-1");
    expect(session.expiresAt).toBe(900_000);
    expect(await keeper.token()).toBe("access-1");
  });

  it("reports a refused login with the gateway's message", async () => {
    const { send } = gateway();
    const keeper = new SessionKeeper(send, () => "", () => 0);
    await expect(keeper.login("alice", "wrong")).rejects.toThrow(LoginError);
    await expect(keeper.login("alice", "wrong")).rejects.toThrow("invalid login or password");
    expect(keeper.current).toBeNull();
  });

  it("refreshes once for overlapping callers when the token is about to expire", async () => {
    const { send, calls } = gateway();
    let now = 0;
    const keeper = new SessionKeeper(send, () => "", () => now);
    await keeper.login("alice", "correct horse");
    now = 880_000; // 20 s before expiry: inside the early window
    const tokens = await Promise.all([keeper.token(), keeper.token(), keeper.token()]);
    expect(tokens).toEqual(["access-2", "access-2", "access-2"]);
    expect(calls.filter((c) => c.url === "/api/auth/session/refresh")).toHaveLength(1);
    expect(new Headers(calls[1].init.headers).get("x-csrf-token")).toBe("csrf-1");
  });

  it("resumes a session from the CSRF cookie after a reload, or says there is none", async () => {
    const { send } = gateway();
    const none = new SessionKeeper(send, () => "theme=dark", () => 0);
    expect(await none.resume()).toBeNull();
    const keeper = new SessionKeeper(send, () => "vps_csrf=csrf-0", () => 0);
    expect((await keeper.resume())?.accessToken).toBe("access-1");
    const forged = new SessionKeeper(send, () => "vps_csrf=forged", () => 0);
    expect(await forged.resume()).toBeNull();
  });

  it("logs out with the access token and the CSRF token, and forgets the session", async () => {
    const { send, calls } = gateway();
    const keeper = new SessionKeeper(send, () => "", () => 0);
    await keeper.login("alice", "correct horse");
    await keeper.logout();
    const last = calls[calls.length - 1];
    expect(last.init.method).toBe("DELETE");
    const headers = new Headers(last.init.headers);
    expect(headers.get("authorization")).toBe("Bearer access-1");
    expect(headers.get("x-csrf-token")).toBe("csrf-1");
    expect(keeper.current).toBeNull();
    expect(await keeper.token()).toBeNull();
  });

  it("logs out everywhere with a fresh token when the one in memory has expired", async () => {
    const { send, calls } = gateway();
    let now = 0;
    const keeper = new SessionKeeper(send, () => "", () => now);
    await keeper.login("alice", "correct horse");
    now = 901_000;
    await keeper.logoutEverywhere();
    const last = calls[calls.length - 1];
    expect(last.url).toBe("/api/auth/session?everywhere=true");
    expect(new Headers(last.init.headers).get("authorization")).toBe("Bearer access-2");
    expect(keeper.current).toBeNull();
  });

  it("keeps the session and says so when the gateway refuses the logout", async () => {
    const refusing = (async (input: RequestInfo | URL, init: RequestInit = {}) =>
      init.method === "DELETE" ? Response.json({ error: "busy" }, { status: 503 }) : gateway().send(input, init)) as typeof fetch;
    const keeper = new SessionKeeper(refusing, () => "", () => 0);
    await keeper.login("alice", "correct horse");
    await expect(keeper.logoutEverywhere()).rejects.toBeInstanceOf(LogoutError);
    expect(keeper.current?.accessToken).toBe("access-1");
  });
});
