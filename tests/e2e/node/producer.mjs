// Enqueue a `chat` job with Node BullMQ, as the README shows, and print the worker's answer.
// Usage: REDIS_URL=redis://... QUEUE_PREFIX=bull node producer.mjs "Calculate 100000 / 0.10"
import { Queue, QueueEvents } from 'bullmq';

const url = new URL(process.env.REDIS_URL);
const connection = { host: url.hostname, port: Number(url.port || 6379) };
const prefix = process.env.QUEUE_PREFIX || 'bull';
const queue = new Queue('agent-queue', { connection, prefix });
const events = new QueueEvents('agent-queue', { connection, prefix });
await events.waitUntilReady();

const job = await queue.add('chat', { message: process.argv[2] },
  { attempts: 3, backoff: { type: 'exponential', delay: 2000 } });
const result = await job.waitUntilFinished(events, 60_000);
const stored = await queue.getJob(job.id);
console.log(JSON.stringify({ id: job.id, result, state: await stored.getState() }));
await events.close();
await queue.close();
