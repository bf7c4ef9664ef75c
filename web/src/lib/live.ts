// The live feed: one Socket.IO connection per tab to the gateway (seed 000's events). Pages
// say which servers they watch; the connection subscribes to each once, and again after
// every reconnect (the gateway forgets subscriptions with the socket).

import { io, type Socket } from "socket.io-client";
import type { UsageData } from "../api/types";

/** `server-stats`: a sample the monitor just took. */
export interface StatsEvent {
  serverId: number;
  at: number;
  stats: { status: string; data: ServerStats };
}

/** What a sample says (its `rrdData` is empty: history comes from the status route). */
export type ServerStats = UsageData;

/** `server-status`: a server changed state (a task began, ended or failed). */
export interface StatusEvent {
  serverId: number;
  /** The owner (administrators hear every user's servers). */
  userId: number;
  status: string;
  task?: string;
  taskId?: string;
  failed?: boolean;
  reason?: string;
}

/** `server-alerts`: a resource alert fired or cleared. */
export interface AlertsEvent {
  serverId: number;
  alerts: { type: string; message: string; level: string }[];
}

type Handler<T> = (event: T) => void;

export class Live {
  private socket: Socket | null = null;
  /** How many watchers each server has; subscribed while above zero. */
  private watched = new Map<number, number>();
  private stats = new Set<Handler<StatsEvent>>();
  private status = new Set<Handler<StatusEvent>>();
  private alerts = new Set<Handler<AlertsEvent>>();
  connected = false;
  private retries = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly token: () => Promise<string | null>,
    private readonly connect: typeof io = io,
  ) {}

  /** Opens the connection (once); the handshake asks for a fresh token every time. */
  start(): void {
    if (this.socket) return;
    const socket = this.connect({
      transports: ["websocket", "polling"],
      auth: (cb) => {
        this.token().then((token) => cb({ token: token ?? "" }));
      },
    });
    socket.on("connect", () => {
      this.connected = true;
      this.retries = 0;
      for (const id of this.watched.keys()) socket.emit("subscribe-server", id);
    });
    // The gateway closes a socket whose handshake token has expired, and refuses one whose
    // token it does not accept; the client does not come back from either by itself. Here
    // it does, with a fresh token, while the page still wants the feed.
    socket.on("disconnect", (reason) => {
      this.connected = false;
      if (reason === "io server disconnect") this.reconnect(socket);
    });
    socket.on("connect_error", () => {
      if (!socket.active) this.reconnect(socket);
    });
    socket.on("server-stats", (e: StatsEvent) => this.stats.forEach((h) => h(e)));
    socket.on("server-status", (e: StatusEvent) => this.status.forEach((h) => h(e)));
    socket.on("server-alerts", (e: AlertsEvent) => this.alerts.forEach((h) => h(e)));
    this.socket = socket;
  }

  stop(): void {
    clearTimeout(this.retryTimer);
    this.socket?.disconnect();
    this.socket = null;
    this.connected = false;
  }

  /** Connects `socket` again after a pause that doubles each time (1 s to 30 s). */
  private reconnect(socket: Socket): void {
    clearTimeout(this.retryTimer);
    const delay = Math.min(30_000, 1000 * 2 ** this.retries);
    this.retries++;
    this.retryTimer = setTimeout(() => {
      if (this.socket === socket) socket.connect();
    }, delay);
  }

  /** Watches a server's stats; the returned function stops watching. */
  watch(serverId: number): () => void {
    const count = this.watched.get(serverId) ?? 0;
    this.watched.set(serverId, count + 1);
    if (count === 0 && this.socket?.connected) this.socket.emit("subscribe-server", serverId);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const left = (this.watched.get(serverId) ?? 1) - 1;
      if (left > 0) {
        this.watched.set(serverId, left);
        return;
      }
      this.watched.delete(serverId);
      if (this.socket?.connected) this.socket.emit("unsubscribe-server", serverId);
    };
  }

  onStats(handler: Handler<StatsEvent>): () => void {
    this.stats.add(handler);
    return () => this.stats.delete(handler);
  }

  /** State changes of every server the user owns (no subscription needed). */
  onStatus(handler: Handler<StatusEvent>): () => void {
    this.status.add(handler);
    return () => this.status.delete(handler);
  }

  onAlerts(handler: Handler<AlertsEvent>): () => void {
    this.alerts.add(handler);
    return () => this.alerts.delete(handler);
  }
}
