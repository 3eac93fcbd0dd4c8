// One BullMQ worker process of the harness (started by bench.mjs with child_process.fork).
//
// Each job it takes is one fire of a job scheduler: it POSTs once to the target with the
// job's index and the fire's scheduled instant in headers, over a keep-alive connection.
// The scheduled instant is job.opts.prevMillis (see README.md, "Scheduled time").
//
// Configuration comes from the environment bench.mjs sets; the parent is told "ready" once
// the worker runs, and on "stop" the worker closes (waiting for the jobs it holds) and sends
// back its counters.

import http from 'node:http';
import { Worker } from 'bullmq';

const env = process.env;
const target = new URL(env.BENCH_TARGET_URL);
const concurrency = Number(env.BENCH_CONCURRENCY);
const connection = {
  host: env.BENCH_REDIS_HOST,
  port: Number(env.BENCH_REDIS_PORT),
  db: Number(env.BENCH_REDIS_DB),
  ...(env.BENCH_REDIS_PASSWORD ? { password: env.BENCH_REDIS_PASSWORD } : {}),
};

// Keep-alive, at most one connection per job in flight.
const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });

const stats = {
  processed: 0,
  http_errors: 0,
  // job.opts.prevMillis is missing, or disagrees with the id's suffix
  // (`repeat:<schedulerId>:<nextMillis>`).
  scheduled_mismatch_id: 0,
  // job.timestamp + job.opts.delay differs from job.opts.prevMillis (it does when the delay
  // was clamped to 0 because the fire was already due when it was created). job.delay
  // itself is no use: promoting a delayed job sets the stored delay to 0.
  scheduled_mismatch_timestamp_delay: 0,
  // Fires whose scheduled instant is not a whole second.
  off_second: 0,
};

function post(jobIndex, scheduledMs, takenUs) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: target.hostname,
        port: target.port,
        path: '/fire',
        method: 'POST',
        agent,
        timeout: 30_000,
        headers: {
          'x-bench-job': String(jobIndex),
          'x-bench-scheduled-ms': String(scheduledMs),
          // When this process's processor received the job (µs since the epoch).
          'x-bench-taken-us': takenUs.toFixed(0),
          'content-length': '0',
        },
      },
      (res) => {
        res.resume();
        res.on('end', () =>
          res.statusCode >= 200 && res.statusCode < 300
            ? resolve()
            : reject(new Error(`target answered ${res.statusCode}`)),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('target timed out after 30 s')));
    req.on('error', reject);
    req.end();
  });
}

const worker = new Worker(
  env.BENCH_QUEUE,
  async (job) => {
    const takenUs = (performance.timeOrigin + performance.now()) * 1000;
    const scheduledMs = job.opts.prevMillis;
    const fromId = Number(job.id.slice(job.id.lastIndexOf(':') + 1));
    if (typeof scheduledMs !== 'number' || scheduledMs !== fromId) {
      stats.scheduled_mismatch_id += 1;
    }
    if (Number(job.timestamp) + Number(job.opts.delay) !== scheduledMs) {
      stats.scheduled_mismatch_timestamp_delay += 1;
    }
    if (scheduledMs % 1000 !== 0) {
      stats.off_second += 1;
    }
    stats.processed += 1;
    try {
      await post(job.data.job, scheduledMs ?? fromId, takenUs);
    } catch (err) {
      stats.http_errors += 1;
      throw err;
    }
  },
  {
    connection,
    prefix: env.BENCH_PREFIX,
    concurrency,
  },
);

worker.on('error', (err) => console.error(`worker ${process.pid}: ${err.message}`));

let stopping = false;
process.on('message', async (msg) => {
  if (msg?.type !== 'stop' || stopping) return;
  stopping = true;
  await worker.close();
  agent.destroy();
  process.send({ type: 'stats', stats }, () => process.exit(0));
});
process.on('disconnect', () => {
  if (!stopping) process.exit(1);
});

await worker.waitUntilReady();
process.send({ type: 'ready' });
