// How numbers, sizes and times read on every page.

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

/** A byte count in binary units with up to one decimal: `1.5 GiB`. */
export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n) || n < 0) return "—";
  let value = n;
  let unit = 0;
  // Rounding may carry a value to 1024 (1048575 B is "1 MiB", not "1024 KiB").
  while (unit < UNITS.length - 1 && Math.round(value) >= 1024) {
    value /= 1024;
    unit++;
  }
  const shown = unit === 0 || value >= 100 ? Math.round(value).toString() : value.toFixed(1).replace(/\.0$/, "");
  return `${shown} ${UNITS[unit]}`;
}

/** Megabytes as a plan states them (`memory: 2048`) in binary units. */
export function megabytes(mb: number | null | undefined): string {
  return mb === null || mb === undefined ? "—" : bytes(mb * 1024 * 1024);
}

/** A fraction of one (0.253) as a percentage: `25.3%`. */
export function percent(fraction: number | null | undefined): string {
  if (fraction === null || fraction === undefined || !Number.isFinite(fraction)) return "—";
  return `${(Math.round(fraction * 1000) / 10).toFixed(1).replace(/\.0$/, "")}%`;
}

/** Credits as the API counts them (hundredths), e.g. 1250 → `12.50`. */
export function credits(cents: number | null | undefined): string {
  if (cents === null || cents === undefined || !Number.isFinite(cents)) return "—";
  const rounded = Math.round(cents);
  const sign = rounded < 0 ? "-" : "";
  const abs = Math.abs(rounded);
  return `${sign}${Math.floor(abs / 100)}.${(abs % 100).toString().padStart(2, "0")}`;
}

/** A duration in seconds, the two largest units: `3d 4h`, `5m 2s`. */
export function duration(secs: number | null | undefined): string {
  if (secs === null || secs === undefined || !Number.isFinite(secs) || secs < 0) return "—";
  const parts: [number, string][] = [
    [Math.floor(secs / 86400), "d"],
    [Math.floor((secs % 86400) / 3600), "h"],
    [Math.floor((secs % 3600) / 60), "m"],
    [Math.floor(secs % 60), "s"],
  ];
  const first = parts.findIndex(([v]) => v > 0);
  if (first === -1) return "0s";
  return parts
    .slice(first, first + 2)
    .filter(([v]) => v > 0)
    .map(([v, u]) => `${v}${u}`)
    .join(" ");
}

/** A timestamp (RFC 3339 text or Unix ms) in the reader's locale; `—` when absent. */
export function when(at: string | number | null | undefined): string {
  if (at === null || at === undefined || at === "") return "—";
  const date = new Date(at);
  return Number.isNaN(date.getTime()) ? "—" : date.toLocaleString();
}

/** The message of an API error body in any dialect's shape, or a fallback. */
export function problem(body: unknown, fallback = "The request failed."): string {
  if (body && typeof body === "object") {
    const b = body as Record<string, unknown>;
    for (const key of ["error", "message", "detail"]) {
      if (typeof b[key] === "string" && b[key] !== "") return b[key] as string;
    }
  }
  return fallback;
}
