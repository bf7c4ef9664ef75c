import { describe as group, expect, it } from "vitest";
import { describe, follow, type Task } from "./tasks";

const task = (state: string, step = "", stepsDone: string[] = []): Task => ({
  id: "t1",
  serverId: 1,
  kind: "start",
  state,
  step,
  stepsDone,
});

group("follow", () => {
  it("reads until the task ends and reports each change once", async () => {
    const answers = [task("running", "boot"), task("running", "boot"), null, task("running", "network", ["boot"]), task("succeeded", "", ["boot", "network"])];
    const seen: string[] = [];
    const waits: number[] = [];
    const end = await follow("t1", {
      read: async () => answers.shift() ?? null,
      onUpdate: (t) => seen.push(`${t.state}:${t.step}`),
      sleep: async (ms) => void waits.push(ms),
      intervalMs: 100,
      maxIntervalMs: 200,
    });
    expect(end?.state).toBe("succeeded");
    expect(seen).toEqual(["running:boot", "running:network", "succeeded:"]);
    // Backs off by half again each time, up to the cap.
    expect(waits).toEqual([100, 150, 200, 200]);
  });

  it("stops when the page is left", async () => {
    const controller = new AbortController();
    let reads = 0;
    const end = await follow("t1", {
      read: async () => {
        reads++;
        if (reads === 2) controller.abort();
        return task("running", "boot");
      },
      onUpdate: () => {},
      sleep: async () => {},
      signal: controller.signal,
    });
    expect(reads).toBe(2);
    expect(end?.state).toBe("running");
  });
});

group("describe", () => {
  it("names the step and how far it got", () => {
    expect(describe(task("running", "set_password", ["boot"]))).toBe("Start: set password (1 step done)");
    expect(describe(task("running"))).toBe("Start: waiting");
    expect(describe(task("succeeded"))).toBe("Start: done");
    expect(describe({ ...task("failed"), error: "node unreachable" })).toBe("Start: failed — node unreachable");
  });
});
