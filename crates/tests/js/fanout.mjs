// Socket.IO fan-out benchmark (run by deploy/bench.sh): CLIENTS sockets of one user
// subscribe to one server; MESSAGES samples are published straight to NATS
// (`vps.stats.<id>`, stamped with the time of publishing) at RATE per second; each
// client's receipt time minus the stamp gives the latency from publish to receipt.
// Prints p50, p99 and max, and how many of the expected messages arrived.
import { io } from 'socket.io-client';
import net from 'node:net';

const env = process.env;
const BASE = env.BASE;
const TOKEN = env.TOKEN;
const SERVER_ID = Number(env.SERVER_ID);
const CLIENTS = Number(env.CLIENTS ?? 1000);
const MESSAGES = Number(env.MESSAGES ?? 50);
const RATE = Number(env.RATE ?? 10);
const nats = new URL(env.NATS_URL);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const latencies = [];
const sockets = [];
let connected = 0;
for (let i = 0; i < CLIENTS; i++) {
  const socket = io(BASE, { auth: { token: TOKEN }, transports: ['websocket'], forceNew: true });
  socket.on('connect', () => {
    connected += 1;
    socket.emit('subscribe-server', SERVER_ID);
  });
  socket.on('server-stats', (data) => {
    if (data.serverId === SERVER_ID && data.stats?.data?.uptime === 4242) latencies.push(Date.now() - data.at);
  });
  sockets.push(socket);
  if (i % 50 === 49) await sleep(50);
}
for (let i = 0; i < 600 && connected < CLIENTS; i++) await sleep(100);
if (connected < CLIENTS) {
  console.log(`only ${connected} of ${CLIENTS} clients connected`);
  process.exit(1);
}
await sleep(2000); // the subscriptions settle

const conn = net.connect(Number(nats.port || 4222), nats.hostname);
await new Promise((r) => conn.once('data', r)); // INFO
const connect = { verbose: false, pedantic: false, user: decodeURIComponent(nats.username), pass: decodeURIComponent(nats.password) };
conn.write(`CONNECT ${JSON.stringify(connect)}\r\nPING\r\n`);
await sleep(200);
for (let m = 0; m < MESSAGES; m++) {
  const sample = JSON.stringify({
    serverId: SERVER_ID, nodeId: 1, atMs: Date.now(), state: 'running', cpu: 0.1, cores: 1,
    memoryUsedBytes: 1, memoryMaxBytes: 2, diskUsedBytes: 1, diskMaxBytes: 2, uptimeSecs: 4242,
  });
  conn.write(`PUB vps.stats.${SERVER_ID} ${Buffer.byteLength(sample)}\r\n${sample}\r\n`);
  await sleep(1000 / RATE);
}
await sleep(3000);
conn.end();
sockets.forEach((s) => s.close());
latencies.sort((a, b) => a - b);
const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor((latencies.length * p) / 100))];
console.log(`  ${CLIENTS} clients, ${MESSAGES} samples at ${RATE}/s: ${latencies.length} of ${CLIENTS * MESSAGES} delivered`);
console.log(`  publish -> receipt: p50 ${pct(50)} ms, p99 ${pct(99)} ms, max ${latencies[latencies.length - 1]} ms`);
process.exit(0);
