import { afterEach, describe, expect, it, vi } from "vitest";
import { Live } from "./live";

/** A stand-in for socket.io-client's socket: records what the page sends, lets a test play the gateway. */
function fakeSocket() {
  const handlers = new Map<string, ((...args: unknown[]) => void)[]>();
  const socket = {
    connected: false,
    active: true,
    sent: [] as [string, unknown][],
    connects: 0,
    on(event: string, handler: (...args: unknown[]) => void) {
      handlers.set(event, [...(handlers.get(event) ?? []), handler]);
      return socket;
    },
    emit(event: string, data: unknown) {
      socket.sent.push([event, data]);
      return socket;
    },
    connect() {
      socket.connects++;
      return socket;
    },
    disconnect() {
      socket.connected = false;
      return socket;
    },
    /** The gateway's side: an event arrives. */
    fire(event: string, ...args: unknown[]) {
      if (event === "connect") socket.connected = true;
      for (const h of handlers.get(event) ?? []) h(...args);
    },
  };
  return socket;
}

function live() {
  const socket = fakeSocket();
  const feed = new Live(async () => "token", (() => socket) as never);
  feed.start();
  return { socket, feed };
}

afterEach(() => vi.useRealTimers());

describe("Live", () => {
  it("subscribes to watched servers on every connect, once each", () => {
    const { socket, feed } = live();
    const stop = feed.watch(7);
    feed.watch(7);
    socket.fire("connect");
    expect(socket.sent).toEqual([["subscribe-server", 7]]);
    socket.fire("disconnect", "transport close");
    socket.fire("connect");
    expect(socket.sent).toEqual([["subscribe-server", 7], ["subscribe-server", 7]]);
    stop();
    expect(socket.sent.length).toBe(2);
  });

  it("unsubscribes when the last watcher leaves", () => {
    const { socket, feed } = live();
    socket.fire("connect");
    const a = feed.watch(3);
    const b = feed.watch(3);
    a();
    a();
    expect(socket.sent).toEqual([["subscribe-server", 3]]);
    b();
    expect(socket.sent).toEqual([["subscribe-server", 3], ["unsubscribe-server", 3]]);
  });

  it("comes back after the gateway closes the socket, backing off", () => {
    vi.useFakeTimers();
    const { socket } = live();
    socket.fire("connect");
    socket.fire("disconnect", "io server disconnect");
    vi.advanceTimersByTime(999);
    expect(socket.connects).toBe(0);
    vi.advanceTimersByTime(1);
    expect(socket.connects).toBe(1);
    socket.active = false;
    socket.fire("connect_error", new Error("invalid or expired access token"));
    vi.advanceTimersByTime(1999);
    expect(socket.connects).toBe(1);
    vi.advanceTimersByTime(1);
    expect(socket.connects).toBe(2);
  });

  it("does not come back once stopped, and passes events to their handlers", () => {
    vi.useFakeTimers();
    const { socket, feed } = live();
    const heard: number[] = [];
    const off = feed.onStatus((e) => heard.push(e.serverId));
    socket.fire("server-status", { serverId: 4, userId: 1, status: "running" });
    off();
    socket.fire("server-status", { serverId: 5, userId: 1, status: "running" });
    expect(heard).toEqual([4]);
    socket.fire("disconnect", "io server disconnect");
    feed.stop();
    vi.advanceTimersByTime(60_000);
    expect(socket.connects).toBe(0);
  });
});
