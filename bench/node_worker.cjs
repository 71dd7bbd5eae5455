// Node BullMQ's side of bench/processing.py: one worker process, as the Python contenders run.
// node node_worker.cjs <mode: rate|sleep|latency> <queue> <prefix> <count> <concurrency>
// Prints "ready" once connected, then "picked <ms>" per job (latency mode) or
// "done <jobs> <seconds>" once <count> jobs have completed (counted after Redis stored them).
const { Worker } = require('bullmq');

const [mode, queue, prefix, countText, concurrencyText] = process.argv.slice(2);
const count = Number(countText);
const url = new URL(process.env.REDIS_URL);
const connection = { host: url.hostname, port: Number(url.port || 6379) };
const nowMs = () => performance.timeOrigin + performance.now();

let started = 0;
let completed = 0;
const processor = async (job) => {
  if (mode === 'latency') {
    console.log(`picked ${nowMs() - job.data.t}`);
  } else if (mode === 'sleep') {
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
};

started = nowMs();
const worker = new Worker(queue, processor, {
  connection, prefix, concurrency: Number(concurrencyText), name: 'bench-node',
});
worker.on('completed', async () => {
  completed += 1;
  if (mode !== 'latency' && completed === count) {
    console.log(`done ${completed} ${(nowMs() - started) / 1000}`);
    await worker.close();
    process.exit(0);
  }
});
worker.waitUntilReady().then(() => console.log('ready'));
process.on('SIGTERM', async () => { await worker.close(); process.exit(0); });
