// Short names for the gateway's schemas that pages share (all generated from openapi.json).

import type { components } from "./schema";

type Schemas = components["schemas"];

export type Catalog = Schemas["Catalog"];
export type Tariff = Schemas["Tariff"];
export type CatalogOs = Schemas["CatalogImage"];
export type CatalogLocation = Schemas["CatalogLocation"];
export type CreatedServer = Schemas["CreatedServer"];
export type ServerUsage = Schemas["ServerUsage"];
export type UsageData = Schemas["UsageData"];
export type RrdPoint = Schemas["RrdPoint"];
export type ConsoleUrl = Schemas["ConsoleUrl"];
export type PanelSnapshot = Schemas["PanelSnapshot"];
export type PanelBackup = Schemas["PanelBackup"];
export type Schedule = Schemas["ScheduleView"];
export type WebhookEventType = Schemas["WebhookEventType"];

/** Every webhook event type, for choosing among them; the build fails if the API's list differs. */
export const WEBHOOK_EVENT_TYPES = [
  "server.created",
  "server.state",
  "server.deleted",
  "server.suspended",
  "server.traffic_exceeded",
  "snapshot.created",
  "snapshot.restored",
  "snapshot.deleted",
  "snapshot.failed",
  "backup.created",
  "backup.restored",
  "backup.deleted",
  "backup.failed",
  "billing.payment_reminder",
  "ticket.opened",
  "ticket.replied",
  "ticket.closed",
  "ticket.reopened",
  "alert.fired",
  "alert.resolved",
] as const satisfies readonly WebhookEventType[];
/** True only while the list above names every type the API document does. */
const everyEventType: Exclude<WebhookEventType, (typeof WEBHOOK_EVENT_TYPES)[number]> extends never ? true : never = true;
void everyEventType;

/** Every reply that begins a task: the task's id is in `taskId`, or (a resize) in `data`. */
export type TaskStarted = Schemas["TaskBegun"] | Schemas["NewPassword"] | Schemas["Resizing"] | Schemas["SnapshotBegun"] | Schemas["BackupBegun"];

/** The task a reply began. */
export function taskOf(started: TaskStarted): string {
  return "taskId" in started ? started.taskId : started.data;
}

/** Runs a call that begins a task, shows the task's progress, and gives the reply (null on failure). */
export type Run = <T extends TaskStarted>(call: () => Promise<{ data?: T; error?: unknown }>) => Promise<T | null>;
