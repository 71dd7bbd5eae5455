// A Node BullMQ worker answering `chat` jobs that agentqueue's API enqueued.
// Prints "ready" once listening; exits after one job.
import { Worker } from 'bullmq';

const url = new URL(process.env.REDIS_URL);
const connection = { host: url.hostname, port: Number(url.port || 6379) };
const prefix = process.env.QUEUE_PREFIX || 'bull';
const worker = new Worker('agent-queue', async (job) => {
  await job.updateProgress(50);
  return { response: `node heard: ${job.data.message}`, sessionId: job.data.sessionId };
}, { connection, prefix });
worker.on('completed', async () => { await worker.close(); process.exit(0); });
await worker.waitUntilReady();
console.log('ready');
