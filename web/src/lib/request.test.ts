import { describe, expect, it } from "vitest";
import { addOnly, idempotencyKey, request, takenMeanwhile } from "./request";

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
    expect(outcome).toEqual({ ok: false, message: "no such token of yours", status: 404 });
  });

  it("falls back when the error has no message", async () => {
    expect(await request(answer(502, { error: "Bad Gateway" }), "failed")).toEqual({
      ok: false,
      message: "failed",
      status: 502,
    });
  });

  it("says so when the gateway cannot be reached", async () => {
    const outcome = await request(Promise.reject(new TypeError("Failed to fetch")), "failed");
    expect(outcome.ok).toBe(false);
    expect(outcome.ok || outcome.message).toMatch(/could not be reached/);
  });
});

describe("adding to the catalog", () => {
  it("asks for add-only only when adding", () => {
    expect(addOnly(true)).toEqual({ header: { "If-None-Match": "*" } });
    expect(addOnly(false)).toEqual({});
  });

  it("tells a lost add (412) from other failures", async () => {
    const lost = await request(answer(412, { error: { error: "plan already exists" } }), "failed");
    expect(takenMeanwhile(lost)).toBe(true);
    expect(takenMeanwhile(await request(answer(400, { error: { error: "bad" } }), "failed"))).toBe(false);
    expect(takenMeanwhile(await request(answer(200, { data: {} }), "failed"))).toBe(false);
    expect(takenMeanwhile(await request(Promise.reject(new TypeError("offline")), "failed"))).toBe(false);
  });
});

describe("idempotencyKey", () => {
  it("differs every time", () => {
    expect(idempotencyKey()).not.toBe(idempotencyKey());
  });
});
