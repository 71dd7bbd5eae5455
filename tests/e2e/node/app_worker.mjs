// A Node BullMQ worker for jobs that agentqueue's Python API (`App.enqueue`) queued.
// Usage: node app_worker.mjs <queue>. Prints "ready" once listening; exits after one job.
import { Worker } from 'bullmq';

const url = new URL(process.env.REDIS_URL);
const connection = { host: url.hostname, port: Number(url.port || 6379) };
const prefix = process.env.QUEUE_PREFIX || 'bull';
const worker = new Worker(process.argv[2], async (job) => {
  await job.updateProgress({ current: 1, total: 2, percent: 50, message: 'node half way' });
  return { doubled: job.data.n * 2, by: 'node' };
}, { connection, prefix });
worker.on('completed', async () => { await worker.close(); process.exit(0); });
await worker.waitUntilReady();
console.log('ready');
