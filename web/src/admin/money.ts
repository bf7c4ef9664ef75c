// Amounts as operators type them ("25.00", "-3.5") and as the API counts them (hundredths).

/** Decimal text with at most two decimals in minor units, or null when it is not one. */
export function minorUnits(text: string): number | null {
  const m = /^([+-]?)(\d+)(?:\.(\d{1,2}))?$/.exec(text.trim());
  if (!m) return null;
  const value = Number(m[2]) * 100 + Number((m[3] ?? "").padEnd(2, "0"));
  if (!Number.isSafeInteger(value)) return null;
  return m[1] === "-" ? -value : value;
}
