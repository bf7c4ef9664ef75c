import { describe, expect, it } from "vitest";
import { bytes, credits, duration, megabytes, percent, problem, when } from "./format";

describe("bytes", () => {
  it("keeps whole bytes below one KiB", () => {
    expect(bytes(0)).toBe("0 B");
    expect(bytes(1)).toBe("1 B");
    expect(bytes(1023)).toBe("1023 B");
  });

  it("switches unit at 1024", () => {
    expect(bytes(1024)).toBe("1 KiB");
    expect(bytes(1024 * 1024)).toBe("1 MiB");
    expect(bytes(1024 ** 3)).toBe("1 GiB");
    expect(bytes(1024 ** 4)).toBe("1 TiB");
    expect(bytes(1024 ** 5)).toBe("1 PiB");
  });

  it("shows one decimal, without a trailing .0", () => {
    expect(bytes(1536)).toBe("1.5 KiB");
    expect(bytes(1.25 * 1024 ** 3)).toBe("1.3 GiB");
    expect(bytes(2 * 1024 ** 2)).toBe("2 MiB");
  });

  it("rounds to whole numbers from 100 up", () => {
    expect(bytes(100 * 1024)).toBe("100 KiB");
    expect(bytes(512.4 * 1024)).toBe("512 KiB");
  });

  it("stays in PiB past the largest unit", () => {
    expect(bytes(2048 * 1024 ** 5)).toBe("2048 PiB");
  });

  it("shows a dash for nothing, negatives and non-numbers", () => {
    expect(bytes(null)).toBe("—");
    expect(bytes(undefined)).toBe("—");
    expect(bytes(-1)).toBe("—");
    expect(bytes(Number.NaN)).toBe("—");
    expect(bytes(Number.POSITIVE_INFINITY)).toBe("—");
  });
});

describe("megabytes", () => {
  it("reads a plan's MB in binary units", () => {
    expect(megabytes(512)).toBe("512 MiB");
    expect(megabytes(1023)).toBe("1023 MiB");
    expect(megabytes(1024)).toBe("1 GiB");
    expect(megabytes(2048)).toBe("2 GiB");
    expect(megabytes(1536)).toBe("1.5 GiB");
    expect(megabytes(0)).toBe("0 B");
  });

  it("shows a dash for nothing and for negatives", () => {
    expect(megabytes(null)).toBe("—");
    expect(megabytes(undefined)).toBe("—");
    expect(megabytes(-1)).toBe("—");
  });
});

describe("percent", () => {
  it("shows a fraction of one with up to one decimal", () => {
    expect(percent(0.253)).toBe("25.3%");
    expect(percent(0.5)).toBe("50%");
    expect(percent(0)).toBe("0%");
    expect(percent(1)).toBe("100%");
    expect(percent(0.12345)).toBe("12.3%");
    expect(percent(0.9999)).toBe("100%");
  });

  it("shows more than all and negatives as they are", () => {
    expect(percent(1.5)).toBe("150%");
    expect(percent(-0.1)).toBe("-10%");
  });

  it("shows a dash for nothing and non-numbers", () => {
    expect(percent(null)).toBe("—");
    expect(percent(undefined)).toBe("—");
    expect(percent(Number.NaN)).toBe("—");
    expect(percent(Number.NEGATIVE_INFINITY)).toBe("—");
  });
});

describe("credits", () => {
  it("shows hundredths with two decimals", () => {
    expect(credits(1250)).toBe("12.50");
    expect(credits(0)).toBe("0.00");
    expect(credits(5)).toBe("0.05");
    expect(credits(99)).toBe("0.99");
    expect(credits(100)).toBe("1.00");
    expect(credits(123456789)).toBe("1234567.89");
  });

  it("keeps the sign of a charge, also below one", () => {
    expect(credits(-5)).toBe("-0.05");
    expect(credits(-100)).toBe("-1.00");
    expect(credits(-12345)).toBe("-123.45");
  });

  it("rounds fractions of a hundredth", () => {
    expect(credits(12.6)).toBe("0.13");
    expect(credits(12.4)).toBe("0.12");
  });

  it("shows a dash for nothing and non-numbers", () => {
    expect(credits(null)).toBe("—");
    expect(credits(undefined)).toBe("—");
    expect(credits(Number.NaN)).toBe("—");
    expect(credits(Number.POSITIVE_INFINITY)).toBe("—");
  });
});

describe("duration", () => {
  it("shows seconds below a minute", () => {
    expect(duration(0)).toBe("0s");
    expect(duration(0.5)).toBe("0s");
    expect(duration(1)).toBe("1s");
    expect(duration(59)).toBe("59s");
  });

  it("shows the two largest units", () => {
    expect(duration(60)).toBe("1m");
    expect(duration(62)).toBe("1m 2s");
    expect(duration(3599)).toBe("59m 59s");
    expect(duration(3600)).toBe("1h");
    expect(duration(3661)).toBe("1h 1m");
    expect(duration(86399)).toBe("23h 59m");
    expect(duration(86400)).toBe("1d");
    expect(duration(3 * 86400 + 4 * 3600 + 5 * 60)).toBe("3d 4h");
  });

  it("leaves out a zero second unit rather than skipping to the third", () => {
    expect(duration(86400 + 5)).toBe("1d");
    expect(duration(3600 + 7)).toBe("1h");
  });

  it("shows a dash for nothing, negatives and non-numbers", () => {
    expect(duration(null)).toBe("—");
    expect(duration(undefined)).toBe("—");
    expect(duration(-1)).toBe("—");
    expect(duration(Number.NaN)).toBe("—");
    expect(duration(Number.POSITIVE_INFINITY)).toBe("—");
  });
});

describe("when", () => {
  it("shows RFC 3339 text in the reader's locale", () => {
    const at = "2024-03-05T14:07:09Z";
    expect(when(at)).toBe(new Date(at).toLocaleString());
  });

  it("reads numbers as Unix milliseconds, the epoch included", () => {
    expect(when(1_700_000_000_000)).toBe(new Date(1_700_000_000_000).toLocaleString());
    expect(when(0)).toBe(new Date(0).toLocaleString());
  });

  it("shows a dash for nothing and for what is not a time", () => {
    expect(when(null)).toBe("—");
    expect(when(undefined)).toBe("—");
    expect(when("")).toBe("—");
    expect(when("not a date")).toBe("—");
    expect(when(Number.NaN)).toBe("—");
  });
});

describe("problem", () => {
  it("reads each dialect's message field", () => {
    expect(problem({ error: "invalid login or password" })).toBe("invalid login or password");
    expect(problem({ message: "Server not found" })).toBe("Server not found");
    expect(problem({ detail: "quota exceeded", title: "Conflict" })).toBe("quota exceeded");
  });

  it("prefers error, then message, then detail", () => {
    expect(problem({ detail: "c", message: "b", error: "a" })).toBe("a");
    expect(problem({ detail: "c", message: "b" })).toBe("b");
  });

  it("ignores fields that are not text", () => {
    expect(problem({ error: 42, message: "used instead" })).toBe("used instead");
    expect(problem({ error: { code: 1 } })).toBe("The request failed.");
  });

  it("falls back for anything else", () => {
    expect(problem(null)).toBe("The request failed.");
    expect(problem(undefined)).toBe("The request failed.");
    expect(problem("Bad Gateway")).toBe("The request failed.");
    expect(problem({})).toBe("The request failed.");
    expect(problem(undefined, "The tokens could not be loaded.")).toBe("The tokens could not be loaded.");
  });
});

describe("edges that rounding reaches", () => {
  it("carries a size that rounds to 1024 into the next unit", () => {
    expect(bytes(1048575)).toBe("1 MiB");
    expect(bytes(1023)).toBe("1023 B");
  });
  it("shows no negative zero", () => {
    expect(credits(-0.4)).toBe("0.00");
  });
  it("falls back when the error message is empty", () => {
    expect(problem({ error: "" }, "fallback")).toBe("fallback");
  });
});
