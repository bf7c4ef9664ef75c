import { describe, expect, it } from "vitest";
import { idempotencyKey, request } from "./request";

const answer = (status: number, body: { data?: unknown; error?: unknown }) =>
  Promise.resolve({ ...body, response: new Response(null, { status }) });

describe("request", () => {
  it("passes the data on", async () => {
    expect(await request(answer(200, { data: [1, 2] }), "failed")).toEqual({ ok: true, data: [1, 2] });
  });

  it("counts a success with no body as one", async () => {
    expect(await request(answer(204, {}), "failed")).toEqual({ ok: true, data: undefined });
  });

  it("shows the API's message", async () => {
    const outcome = await request(answer(404, { error: { error: "no such token of yours" } }), "failed");
    expect(outcome).toEqual({ ok: false, message: "no such token of yours" });
  });

  it("falls back when the error has no message", async () => {
    expect(await request(answer(502, { error: "Bad Gateway" }), "failed")).toEqual({ ok: false, message: "failed" });
  });

  it("says so when the gateway cannot be reached", async () => {
    const outcome = await request(Promise.reject(new TypeError("Failed to fetch")), "failed");
    expect(outcome.ok).toBe(false);
    expect(outcome.ok || outcome.message).toMatch(/could not be reached/);
  });
});

describe("idempotencyKey", () => {
  it("differs every time", () => {
    expect(idempotencyKey()).not.toBe(idempotencyKey());
  });
});
