import { describe, expect, it } from "vitest";
import { minorUnits } from "./money";

describe("minorUnits", () => {
  it("reads whole and decimal amounts", () => {
    expect(minorUnits("25")).toBe(2500);
    expect(minorUnits("25.00")).toBe(2500);
    expect(minorUnits(" 0.29 ")).toBe(29);
    expect(minorUnits("3.5")).toBe(350);
    expect(minorUnits("+1.05")).toBe(105);
    expect(minorUnits("-12.34")).toBe(-1234);
    expect(minorUnits("0")).toBe(0);
  });

  it("refuses what is not an amount", () => {
    for (const text of ["", "abc", "1.234", "1,50", ".5", "5.", "1e3", "--1", "99999999999999999"]) {
      expect(minorUnits(text), text).toBeNull();
    }
  });
});
