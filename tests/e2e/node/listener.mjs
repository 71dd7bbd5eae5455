// A Node BullMQ `QueueEvents` on a queue agentqueue's workers serve: prints "ready", then one
// JSON line per progress or completed event, and exits after the completed event of job <id>.
// Usage: node listener.mjs <queue> <jobId>
import { QueueEvents } from 'bullmq';

const url = new URL(process.env.REDIS_URL);
const connection = { host: url.hostname, port: Number(url.port || 6379) };
const prefix = process.env.QUEUE_PREFIX || 'bull';
const [queue, wanted] = process.argv.slice(2);
// From the stream's start: the job may run before this process is reading.
const events = new QueueEvents(queue, { connection, prefix, lastEventId: '0' });
events.on('progress', ({ jobId, data }) => {
  console.log(JSON.stringify({ event: 'progress', jobId, data }));
});
events.on('completed', async ({ jobId, returnvalue }) => {
  console.log(JSON.stringify({ event: 'completed', jobId, returnvalue }));
  if (jobId === wanted) { await events.close(); process.exit(0); }
});
await events.waitUntilReady();
console.log('ready');
