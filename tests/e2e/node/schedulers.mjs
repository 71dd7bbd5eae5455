// Node BullMQ's view of a queue's job schedulers, and one made from Node.
// Usage: REDIS_URL=redis://... QUEUE_PREFIX=bull node schedulers.mjs <queue> [list|add <id>]
import { Queue } from 'bullmq';

const url = new URL(process.env.REDIS_URL);
const connection = { host: url.hostname, port: Number(url.port || 6379) };
const prefix = process.env.QUEUE_PREFIX || 'bull';
const [name, command, id] = process.argv.slice(2);
const queue = new Queue(name, { connection, prefix });
if (command === 'add') {
  await queue.upsertJobScheduler(id, { every: 3_600_000 },
    { name: 'sentiment', data: { text: 'made in Node' } });
}
console.log(JSON.stringify(await queue.getJobSchedulers(0, -1, true)));
await queue.close();
