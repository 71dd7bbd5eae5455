// Node BullMQ's `queue.getWorkers()` on a queue: prints one JSON line with the names of the
// connections it lists as workers. Usage: node workers.mjs <queue>
import { Queue } from 'bullmq';

const url = new URL(process.env.REDIS_URL);
const connection = { host: url.hostname, port: Number(url.port || 6379) };
const prefix = process.env.QUEUE_PREFIX || 'bull';
const queue = new Queue(process.argv[2], { connection, prefix });
const workers = await queue.getWorkers();
console.log(JSON.stringify({ count: await queue.getWorkersCount(),
                             names: workers.map((w) => w.rawname ?? w.name) }));
await queue.close();
