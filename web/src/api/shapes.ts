// Replies the gateway's document does not describe field by field yet (seed 000 answers
// they follow), written down once here so pages share one reading of them.

import type { ServerStats } from "../lib/live";

export interface Tariff {
  id: number;
  name: string;
  vcpus: number;
  /** MB. */
  memory: number;
  /** GB. */
  disk: number;
  /** GB a month; 0: unlimited. */
  bandwidth: number;
  /** Minor units a month. */
  price: number;
  hourlyPrice: number;
  snapshotLimit: number;
  backupLimit: number;
  trafficAction: "none" | "throttle" | "suspend";
  throttleMbit: number;
}

export interface CatalogOs {
  id: number;
  name: string;
  type: string;
  /** The template per driver; administrators only. */
  templates?: Record<string, string>;
}

export interface CatalogLocation {
  code: string;
  name: string;
}

/** GET /api/catalog. */
export interface Catalog {
  tariffs: Tariff[];
  os: CatalogOs[];
  locations: CatalogLocation[];
}

/** POST /api/server/create (201). */
export interface CreatedServer {
  id: number;
  status: string;
  ipAddress: string | null;
  /** Shown only in this reply. */
  rootPassword: string | null;
  taskId: string;
}

/** A point of `rrdData`, as Proxmox VE's rrddata: cpu a fraction, the rest bytes (rates per second for net and disk I/O). */
export interface RrdPoint {
  time: number;
  cpu: number;
  mem: number;
  maxmem: number;
  disk: number;
  maxdisk: number;
  netin: number;
  netout: number;
  diskread: number;
  diskwrite: number;
}

/** GET /api/server/{id}/status. */
export interface StatusReply {
  id: number;
  status: string;
  stats: {
    status: "success" | "unavailable";
    data: ServerStats & { rrdData: RrdPoint[] };
  };
}

/** Power actions, snapshots and the rest that start a task. */
export interface TaskStarted {
  status: string;
  taskId?: string;
  /** Resize answers with the task id here. */
  data?: string;
  /** Password reset and reinstall: the new root password, shown only here. */
  password?: string | null;
}

/** POST /api/server/console. */
export interface ConsoleTicket {
  status: string;
  url: string;
  expiresIn: number;
}

/** A snapshot in GET /api/server/{id}/snapshots (`{status, data: [...]}`). */
export interface PanelSnapshot {
  name: string;
  description: string;
  /** Unix seconds. */
  snaptime: number;
  status: "in_progress" | "completed" | "failed" | "unknown";
  sizeMb: number;
}

/** A backup in GET /api/server/{id}/backups (`{status, data: [...]}`). */
export interface PanelBackup {
  id: number;
  name: string;
  status: "in_progress" | "completed" | "failed" | "unknown";
  /** `manual` or `schedule`. */
  origin: string;
  protected: boolean;
  sizeBytes: number;
  createdAt: string | null;
  completedAt: string | null;
  error: string | null;
}

/** GET /api/server/{id}/backups/schedule's `data`. */
export interface Schedule {
  frequency: "daily" | "weekly";
  weekday: string | null;
  time: string;
  timeZone: string;
  keepLast: number;
  keepDaily: number;
  keepWeekly: number;
  keepMonthly: number;
  enabled: boolean;
  nextRunAt: string | null;
  lastRunAt: string | null;
}

/** The `{status, data}` envelope of seed 000's lists. */
export interface Listed<T> {
  status: string;
  data: T;
}
