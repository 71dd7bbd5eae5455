// Seed 001's frontend, as a NestJS app's would connect: io(`${url}/jobs`, {query: {userId}}).
// Prints one JSON line per thing it hears ({"event", "data"}); reads commands from stdin:
// `subscribe <jobId>` / `unsubscribe <jobId>` (printing the acknowledgement as "ack").
// Usage: node follow.mjs <base url> <userId> [token]
import { io } from "socket.io-client";
import { createInterface } from "node:readline";

const [url, userId, token] = process.argv.slice(2);
const print = (event, data) => process.stdout.write(JSON.stringify({ event, data }) + "\n");
const socket = io(`${url}/jobs`, {
  query: { userId },
  auth: token ? { token } : {},
  transports: ["websocket", "polling"],
  reconnection: false,
});
socket.on("connect", () => print("connected", socket.id));
socket.on("connect_error", (err) => { print("connect_error", err.data ?? err.message); process.exit(2); });
socket.on("disconnect", (reason) => print("disconnect", reason));
socket.onAny((event, data) => print(event, data));
createInterface({ input: process.stdin }).on("line", (line) => {
  const [command, jobId] = line.trim().split(/\s+/);
  if (command === "subscribe" || command === "unsubscribe") {
    socket.emit(`${command}-job`, jobId, (ack) => print("ack", ack));
  } else if (command === "quit") {
    socket.close();
    process.exit(0);
  }
});
