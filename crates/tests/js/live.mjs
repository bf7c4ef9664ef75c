// The official socket.io-client against the gateway's live feed. Driven by
// crates/tests/tests/live.rs: it reads BASE, TOKEN, ADMIN_TOKEN, SERVER_ID and FOREIGN_ID from the
// environment, prints one JSON line per step it passes ({"step": ...}), waits for "go" on
// stdin before expecting an alert (the test then makes the guest busy), and exits non-zero
// with {"failed": ...} at the first step that does not happen in time. It ends by logging
// out, after which the gateway must close its socket.
import { io } from 'socket.io-client';
import readline from 'node:readline';

const { BASE, TOKEN, ADMIN_TOKEN, SERVER_ID, FOREIGN_ID } = process.env;
const serverId = Number(SERVER_ID);
const foreignId = Number(FOREIGN_ID);
const say = (step, extra = {}) => console.log(JSON.stringify({ step, ...extra }));
const fail = (why) => {
  console.log(JSON.stringify({ failed: why }));
  process.exit(1);
};
const within = (ms, what, promise) =>
  Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms))]);
const once = (socket, event, filter = () => true) =>
  new Promise((resolve) => {
    const handler = (data) => {
      if (filter(data)) {
        socket.off(event, handler);
        resolve(data);
      }
    };
    socket.on(event, handler);
  });
const stdin = readline.createInterface({ input: process.stdin });
const go = new Promise((resolve) => stdin.on('line', (line) => line.trim() === 'go' && resolve()));

async function main() {
  // A bad token is refused with connect_error.
  const stranger = io(BASE, { auth: { token: 'not-a-token' }, reconnection: false, transports: ['websocket'] });
  const refused = await within(30000, 'connect_error for a bad token', once(stranger, 'connect_error'));
  stranger.close();
  say('refused', { message: refused.message });

  // A non-browser client may send its token as an Authorization header instead.
  const headed = io(BASE, { extraHeaders: { authorization: `Bearer ${TOKEN}` }, reconnection: false, transports: ['websocket'] });
  headed.on('connect', () => headed.emit('subscribe-server', serverId));
  await within(30000, 'server-stats with the header', once(headed, 'server-stats', (d) => d.serverId === serverId));
  headed.close();
  say('header');

  // WebSocket: subscribe on every connect, so a reconnect resubscribes.
  const socket = io(BASE, { auth: { token: TOKEN }, transports: ['websocket'] });
  socket.on('connect', () => socket.emit('subscribe-server', serverId));
  await within(30000, 'connect', once(socket, 'connect'));
  const stats = await within(30000, 'server-stats', once(socket, 'server-stats', (d) => d.serverId === serverId));
  if (stats.stats?.status !== 'success' || typeof stats.stats?.data?.cpu !== 'number') fail(`stats shape: ${JSON.stringify(stats)}`);
  if (stats.stats.data.vmid !== serverId || typeof stats.stats.data.memory?.used !== 'number') fail(`stats data: ${JSON.stringify(stats)}`);
  say('stats', { cpu: stats.stats.data.cpu });

  // A foreign server: an error event, and no stats for it.
  let leaked = false;
  socket.on('server-stats', (d) => { if (d.serverId === foreignId) leaked = true; });
  socket.emit('subscribe-server', foreignId);
  const error = await within(30000, 'error for a foreign server', once(socket, 'error'));
  if (error.message !== 'server not found') fail(`error: ${JSON.stringify(error)}`);
  say('foreign', { error });

  // State changes come without a subscription: stop the server, then start it again.
  socket.on('server-status', (d) => { if (d.serverId === foreignId) leaked = true; });
  const power = async (action) => {
    const r = await fetch(`${BASE}/api/server/${serverId}/${action}`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    if (r.status !== 200) fail(`${action}: ${r.status}`);
    return (await r.json()).taskId;
  };
  // An administrator's socket hears every user's servers.
  const admin = io(BASE, { auth: { token: ADMIN_TOKEN }, transports: ['websocket'] });
  await within(30000, 'the administrator connects', once(admin, 'connect'));
  const adminHeard = once(admin, 'server-status', (d) => d.serverId === serverId && d.status === 'stopped');
  const stopped = once(socket, 'server-status', (d) => d.serverId === serverId && d.status === 'stopped');
  const stopTask = await power('stop');
  const stop = await within(30000, 'server-status stopped', stopped);
  await within(30000, "the administrator hears of amy's server", adminHeard);
  admin.close();
  if (stop.task !== 'stop' || stop.taskId !== stopTask || stop.failed !== false || typeof stop.userId !== 'number') fail(`status event: ${JSON.stringify(stop)}`);
  const running = once(socket, 'server-status', (d) => d.serverId === serverId && d.status === 'running');
  await power('start');
  await within(30000, 'server-status running', running);
  say('status');

  // Long-polling works too.
  const polling = io(BASE, { auth: { token: TOKEN }, transports: ['polling'] });
  polling.on('connect', () => polling.emit('subscribe-server', String(serverId)));
  await within(30000, 'server-stats over polling', once(polling, 'server-stats', (d) => d.serverId === serverId));
  polling.close();
  say('polling');

  // The transport drops: the client reconnects, resubscribes and hears stats again.
  socket.io.engine.close();
  await within(30000, 'reconnect', once(socket, 'connect'));
  await within(30000, 'server-stats after the reconnect', once(socket, 'server-stats', (d) => d.serverId === serverId));
  say('resubscribed');

  // The guest is pushed over the CPU threshold: an alert arrives.
  say('ready');
  await go;
  const alert = await within(30000, 'server-alerts', once(socket, 'server-alerts', (d) => d.serverId === serverId && d.alerts?.some((a) => a.type === 'cpu')));
  const cpu = alert.alerts.find((a) => a.type === 'cpu');
  if (!['warning', 'critical'].includes(cpu.level) || !cpu.message.startsWith('CPU usage is at')) fail(`alert: ${JSON.stringify(alert)}`);
  say('alert', { alert: cpu });
  if (leaked) fail('stats or status of a foreign server arrived');

  // Unsubscribed: no more stats.
  socket.emit('unsubscribe-server', serverId);
  await new Promise((r) => setTimeout(r, 500));
  let after = 0;
  socket.on('server-stats', (d) => { if (d.serverId === serverId) after += 1; });
  await new Promise((r) => setTimeout(r, 2500));
  if (after > 0) fail(`${after} stats after unsubscribing`);
  say('unsubscribed');

  // The session is revoked: the gateway closes its sockets.
  const closed = once(socket, 'disconnect');
  const logout = await fetch(`${BASE}/api/auth/logout`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
  if (logout.status !== 200) fail(`logout: ${logout.status}`);
  const reason = await within(30000, 'disconnect after the session was revoked', closed);
  if (reason !== 'io server disconnect') fail(`disconnect reason: ${reason}`);
  say('revoked');
  // By now the other user's server has long stopped: its status must not have reached us.
  if (leaked) fail('status of a foreign server arrived');
  socket.close();
  stdin.close();
}

main().then(() => process.exit(0), (e) => fail(String(e.message ?? e)));
