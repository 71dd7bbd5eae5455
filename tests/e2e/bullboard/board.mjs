// A real Bull Board (Express) over the queues named on the command line, on PORT, with the
// prefix agentqueue uses. Prints "ready" once it listens. Usage: node board.mjs <queue>...
import express from 'express';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import { Queue } from 'bullmq';

const url = new URL(process.env.REDIS_URL);
const connection = { host: url.hostname, port: Number(url.port || 6379) };
const prefix = process.env.QUEUE_PREFIX || 'bull';
const queues = process.argv.slice(2).map(
  (name) => new BullMQAdapter(new Queue(name, { connection, prefix })));
const serverAdapter = new ExpressAdapter();
serverAdapter.setBasePath('/admin/queues');
createBullBoard({ queues, serverAdapter });
const app = express();
app.use('/admin/queues', serverAdapter.getRouter());
app.listen(Number(process.env.PORT), '127.0.0.1', () => console.log('ready'));
