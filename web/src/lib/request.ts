// One shape for a page's API calls: the data, or the message to show, also when the gateway
// cannot be reached at all (openapi-fetch throws then). Success is read from the status,
// since some replies (the catalog's PUTs) have no body the document describes.

import { problem } from "./format";

/** A random key for `Idempotency-Key`. `crypto.randomUUID` exists only on HTTPS and localhost. */
export function idempotencyKey(): string {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

export type Outcome<T> = { ok: true; data: T } | { ok: false; message: string; status?: number };

/**
 * The params of a catalog PUT that adds: `If-None-Match: *` makes the gateway refuse (412)
 * rather than replace an entry another operator added with the same id meanwhile.
 */
export function addOnly(adding: boolean): { header?: { "If-None-Match": string } } {
  return adding ? { header: { "If-None-Match": "*" } } : {};
}

/** Whether a failed add lost to another operator's (the id was taken meanwhile). */
export const takenMeanwhile = (outcome: Outcome<unknown>): boolean => !outcome.ok && outcome.status === 412;

export async function request<T>(
  pending: Promise<{ data?: T; error?: unknown; response: Response }>,
  fallback = "The request failed.",
): Promise<Outcome<T>> {
  try {
    const { data, error, response } = await pending;
    return response.ok
      ? { ok: true, data: data as T }
      : { ok: false, message: problem(error, fallback), status: response.status };
  } catch {
    return { ok: false, message: "The server could not be reached. Check your connection and try again." };
  }
}
