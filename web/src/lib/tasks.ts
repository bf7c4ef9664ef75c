// Following a task (a power action, a snapshot, a resize ...) until it ends, for the
// progress a page shows. The gateway answers GET /api/tasks/{id} from the task's owner.

import type { components } from "../api/schema";

export type Task = components["schemas"]["TaskView"];

export interface FollowOptions {
  /** Reads the task; null when it cannot be read (the reading is then tried again). */
  read: (id: string) => Promise<Task | null>;
  onUpdate: (task: Task) => void;
  /** Waits between reads; the tests pass one that does not. */
  sleep?: (ms: number) => Promise<void>;
  /** The first wait; each next one is half again as long, up to `maxIntervalMs`. */
  intervalMs?: number;
  maxIntervalMs?: number;
  /** Stops following (the page was left). */
  signal?: AbortSignal;
}

const wait = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Reads the task until it is no longer running; resolves with its last state (null if stopped first). */
export async function follow(id: string, options: FollowOptions): Promise<Task | null> {
  const sleep = options.sleep ?? wait;
  const max = options.maxIntervalMs ?? 5000;
  let interval = options.intervalMs ?? 700;
  let last: Task | null = null;
  while (!options.signal?.aborted) {
    const task = await options.read(id);
    if (options.signal?.aborted) break;
    if (task) {
      const changed = !last || last.state !== task.state || last.step !== task.step || last.stepsDone.length !== task.stepsDone.length;
      last = task;
      if (changed) options.onUpdate(task);
      if (task.state !== "running") return task;
    }
    await sleep(interval);
    interval = Math.min(max, Math.round(interval * 1.5));
  }
  return last;
}

/** How a task reads on a page: `Start: booting (2 steps done)`, `Snapshot: failed — disk full`. */
export function describe(task: Task): string {
  const kind = task.kind.charAt(0).toUpperCase() + task.kind.slice(1).replaceAll("_", " ");
  if (task.state === "failed") return `${kind}: failed${task.error ? ` — ${task.error}` : ""}`;
  if (task.state === "succeeded") return `${kind}: done`;
  const done = task.stepsDone.length;
  const step = task.step ? task.step.replaceAll("_", " ") : "waiting";
  return `${kind}: ${step}${done ? ` (${done} step${done === 1 ? "" : "s"} done)` : ""}`;
}
