// BullMQ job schedulers on tickwork-bench's every-second workload.
//
// N job schedulers on `* * * * * *`, each fire one HTTP POST to a target in this process,
// taken by worker processes (worker.mjs). After a warm-up, a window of whole seconds is
// measured: every (job, scheduled second) in it should reach the target exactly once.
// Prints a Markdown table row and a JSON line on stdout; progress goes to stderr.
//
//   node bench.mjs --jobs 1000 --duration 60 --warmup 5 --workers 2 --concurrency 50
//
// See README.md for what is measured and how it matches tickwork-bench.

import { execFileSync, fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';

const USAGE = `bench.mjs: BullMQ job schedulers on tickwork-bench's every-second workload

USAGE: node bench.mjs [OPTIONS]

  --jobs N                job schedulers on '* * * * * *' (default 1000)
  --duration S            seconds measured (default 60)
  --warmup S              seconds between creating the schedulers and measuring (default 5)
  --workers N             worker processes (default 2)
  --concurrency C         concurrency of each worker's BullMQ Worker (default 50)
  --remove-on-complete K  removeOnComplete of every fire: 'true' (remove at once) or a number
                          of completed jobs to keep (default: not set, BullMQ keeps them all)
  --redis-url URL         Redis (default $REDIS_URL or redis://127.0.0.1:6379)
  --redis-db N            database number (default 15; a /N in --redis-url wins)
  --prefix P              BullMQ key prefix (default tickwork-bench-bullmq); the queue's
                          name is unique per run, and its keys are removed at the end
  --settle S              longest wait after the window for its fires to arrive (default 120)
`;

function parseArgs(argv) {
  const args = {
    jobs: 1000,
    duration: 60,
    warmup: 5,
    workers: 2,
    concurrency: 50,
    removeOnComplete: undefined,
    redisUrl: process.env.REDIS_URL || 'redis://127.0.0.1:6379',
    redisDb: 15,
    prefix: 'tickwork-bench-bullmq',
    settle: 120,
  };
  const numeric = {
    '--jobs': 'jobs',
    '--duration': 'duration',
    '--warmup': 'warmup',
    '--workers': 'workers',
    '--concurrency': 'concurrency',
    '--redis-db': 'redisDb',
    '--settle': 'settle',
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === '-h' || flag === '--help') {
      process.stdout.write(USAGE);
      process.exit(0);
    }
    const value = argv[++i];
    if (value === undefined) throw new Error(`${flag} needs a value\n\n${USAGE}`);
    if (numeric[flag]) {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 0) throw new Error(`${flag} ${value}: not a whole number`);
      args[numeric[flag]] = n;
    } else if (flag === '--remove-on-complete') {
      args.removeOnComplete = value === 'true' ? true : Number(value);
      if (args.removeOnComplete !== true && !Number.isInteger(args.removeOnComplete)) {
        throw new Error(`--remove-on-complete ${value}: 'true' or a number`);
      }
    } else if (flag === '--redis-url') {
      args.redisUrl = value;
    } else if (flag === '--prefix') {
      args.prefix = value;
    } else {
      throw new Error(`unknown flag ${flag}\n\n${USAGE}`);
    }
  }
  if (args.jobs < 1 || args.duration < 1 || args.workers < 1 || args.concurrency < 1) {
    throw new Error('--jobs, --duration, --workers and --concurrency must be at least 1');
  }
  return args;
}

const log = (msg) => process.stderr.write(`${msg}\n`);
const round1 = (v) => Math.round(v * 10) / 10;
const round2 = (v) => Math.round(v * 100) / 100;

/** Wall-clock time in µs, with sub-millisecond resolution. */
const nowUs = () => (performance.timeOrigin + performance.now()) * 1000;

// ---- /proc ----------------------------------------------------------------------------

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU seconds (utime + stime, all threads) used so far by `pid`, or null once it is gone. */
function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The fields after the command name, which is in parentheses and may hold spaces:
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 1).trim().split(/\s+/);
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return null;
  }
}

/** A memory figure of `pid` in MiB: VmRSS (now) or VmHWM (peak). */
function memoryMib(pid, field) {
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith(field));
    return Number(line.split(/\s+/)[1]) / 1024;
  } catch {
    return null;
  }
}

function redisServerPids() {
  try {
    return execFileSync('pgrep', ['-x', 'redis-server'])
      .toString()
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

function usage(workerPids, redisPids) {
  return {
    workers: workerPids.map((pid) => ({
      cpu: cpuSeconds(pid),
      rss: memoryMib(pid, 'VmRSS:'),
      peak: memoryMib(pid, 'VmHWM:'),
    })),
    redis: redisPids.map((pid) => cpuSeconds(pid)),
    self: cpuSeconds(process.pid),
  };
}

// ---- the target -----------------------------------------------------------------------

/** Arrivals, in three parallel growable columns. */
class Arrivals {
  constructor() {
    this.n = 0;
    this.job = new Int32Array(1 << 16);
    this.scheduledMs = new Float64Array(1 << 16);
    this.arrivedUs = new Float64Array(1 << 16);
    this.takenUs = new Float64Array(1 << 16);
  }

  push(job, scheduledMs, arrivedUs, takenUs) {
    if (this.n === this.job.length) {
      const grow = (a) => {
        const b = new a.constructor(a.length * 2);
        b.set(a);
        return b;
      };
      this.job = grow(this.job);
      this.scheduledMs = grow(this.scheduledMs);
      this.arrivedUs = grow(this.arrivedUs);
      this.takenUs = grow(this.takenUs);
    }
    this.job[this.n] = job;
    this.scheduledMs[this.n] = scheduledMs;
    this.arrivedUs[this.n] = arrivedUs;
    this.takenUs[this.n] = takenUs;
    this.n += 1;
  }
}

/** Starts the HTTP target on a free port of 127.0.0.1: 200 at once, every request logged. */
async function startTarget(arrivals, window) {
  const server = http.createServer((req, res) => {
    const arrivedUs = nowUs();
    const job = Number(req.headers['x-bench-job'] ?? -1);
    const scheduledMs = Number(req.headers['x-bench-scheduled-ms'] ?? 0);
    const takenUs = Number(req.headers['x-bench-taken-us'] ?? Number.NaN);
    arrivals.push(job, scheduledMs, arrivedUs, takenUs);
    if (scheduledMs >= window.t0 && scheduledMs < window.t1) window.received += 1;
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
    res.end('ok');
  });
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 125_000;
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${server.address().port}` };
}

// ---- the workers ----------------------------------------------------------------------

function startWorker(index, env) {
  const child = fork(new URL('./worker.mjs', import.meta.url), [], {
    env: { ...process.env, ...env },
    // The worker's stdout goes to stderr, so stdout only holds the summary.
    stdio: ['ignore', 2, 2, 'ipc'],
  });
  const worker = { name: `worker-${index + 1}`, child, pid: child.pid, stats: null };
  worker.ready = new Promise((resolve, reject) => {
    child.on('message', (msg) => {
      if (msg?.type === 'ready') resolve();
      if (msg?.type === 'stats') worker.stats = msg.stats;
    });
    child.once('exit', (code) => reject(new Error(`${worker.name} exited with ${code}`)));
  });
  worker.ready.catch(() => {});
  worker.exited = new Promise((resolve) => child.once('exit', resolve));
  return worker;
}

async function stopWorker(worker) {
  if (worker.child.exitCode !== null || worker.child.signalCode !== null) return;
  try {
    worker.child.send({ type: 'stop' });
  } catch {
    // The channel is gone already.
  }
  const timeout = sleep(30_000).then(() => 'timeout');
  if ((await Promise.race([worker.exited, timeout])) === 'timeout') {
    log(`${worker.name} did not stop in 30 s; killing it`);
    worker.child.kill('SIGKILL');
    await worker.exited;
  }
}

// ---- statistics -----------------------------------------------------------------------

/** tickwork-bench's percentile: the nearest rank, index round((n - 1) p). */
function percentile(sorted, p) {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(Math.round((sorted.length - 1) * p), sorted.length - 1)];
}

function lagSummary(sorted) {
  return {
    p50: round1(percentile(sorted, 0.5)),
    p90: round1(percentile(sorted, 0.9)),
    p99: round1(percentile(sorted, 0.99)),
    max: round1(sorted.length ? sorted[sorted.length - 1] : 0),
  };
}

/**
 * What the target received for the window [t0, t1) (ms): expected fires are every job at
 * every second of the window; arrivals count by their scheduled instant. A fire's first
 * arrival is the one with the least lag; further arrivals of it are duplicates.
 */
function deliveries(arrivals, jobs, t0, t1) {
  const firstLagMs = new Map(); // key: (scheduled - t0) * jobs + job
  const firstTakenMs = new Map(); // the same key: when the first arrival's worker took it
  let received = 0;
  let foreign = 0;
  let offSecond = 0;
  for (let i = 0; i < arrivals.n; i++) {
    const scheduled = arrivals.scheduledMs[i];
    if (!(scheduled >= t0 && scheduled < t1)) continue;
    const job = arrivals.job[i];
    if (!(job >= 0 && job < jobs)) {
      foreign += 1;
      continue;
    }
    received += 1;
    const lagMs = arrivals.arrivedUs[i] / 1000 - scheduled;
    const key = (scheduled - t0) * jobs + job;
    const seen = firstLagMs.get(key);
    if (seen === undefined || lagMs < seen) {
      firstLagMs.set(key, lagMs);
      firstTakenMs.set(key, arrivals.takenUs[i] / 1000 - scheduled);
    }
  }
  const expected = jobs * ((t1 - t0) / 1000);
  let fires = 0;
  let afterWindow = 0;
  const lags = new Float64Array(firstLagMs.size);
  const taken = Float64Array.from(firstTakenMs.values()).sort();
  let k = 0;
  for (const [key, lagMs] of firstLagMs) {
    const scheduled = t0 + Math.floor(key / jobs);
    if (scheduled % 1000 === 0) fires += 1;
    else offSecond += 1;
    if (scheduled + lagMs >= t1) afterWindow += 1;
    lags[k++] = lagMs;
  }
  lags.sort();
  return {
    expected,
    delivered: firstLagMs.size,
    received,
    duplicates: received - firstLagMs.size,
    missed: Math.max(0, expected - fires),
    afterWindow,
    offSecond,
    foreign,
    lags,
    taken,
  };
}

/**
 * Sorts the window's missed fires by cause. A BullMQ job scheduler creates a job's next fire
 * when a worker takes the current one, at the first cron instant after that moment (see
 * README.md): a fire taken after the following second(s) skips them. A missed second m of a
 * job counts as `skipped_after_late_take` when that job's latest earlier fire to arrive was
 * taken by its worker at or after m, and as `other` otherwise (never created, or created and
 * never delivered). Arrivals from before the window count as earlier fires.
 */
function missedByCause(arrivals, jobs, t0, t1) {
  const perJob = Array.from({ length: jobs }, () => new Map()); // scheduled -> taken (ms)
  for (let i = 0; i < arrivals.n; i++) {
    const job = arrivals.job[i];
    const scheduled = arrivals.scheduledMs[i];
    if (!(job >= 0 && job < jobs) || scheduled % 1000 !== 0 || scheduled >= t1) continue;
    const taken = arrivals.takenUs[i] / 1000;
    const seen = perJob[job].get(scheduled);
    if (seen === undefined || taken < seen) perJob[job].set(scheduled, taken);
  }
  let late = 0;
  let other = 0;
  for (const fires of perJob) {
    const sorted = [...fires].sort((a, b) => a[0] - b[0]);
    let prevTaken = -Infinity;
    let next = 0;
    for (let second = t0; second < t1; second += 1000) {
      while (next < sorted.length && sorted[next][0] < second) prevTaken = sorted[next++][1];
      if (next < sorted.length && sorted[next][0] === second) continue;
      if (prevTaken >= second) late += 1;
      else other += 1;
    }
  }
  return { skipped_after_late_take: late, other };
}

// ---- Redis ----------------------------------------------------------------------------

function redisConnection(args) {
  const url = new URL(args.redisUrl);
  const path = url.pathname.replace(/^\//, '');
  return {
    host: url.hostname || '127.0.0.1',
    port: Number(url.port || 6379),
    db: path ? Number(path) : args.redisDb,
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
  };
}

async function removeSchedulers(queue, jobs) {
  for (let from = 0; from < jobs; from += 200) {
    const batch = [];
    for (let i = from; i < Math.min(from + 200, jobs); i++) {
      batch.push(queue.removeJobScheduler(`job-${i}`));
    }
    await Promise.all(batch);
  }
}

/** Deletes every key left under the queue; returns how many there were. */
async function deleteLeftovers(client, pattern) {
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (keys.length) deleted += await client.del(...keys);
  } while (cursor !== '0');
  return deleted;
}

// ---- main -----------------------------------------------------------------------------

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const require = createRequire(import.meta.url);
  const bullmqVersion = require('bullmq/package.json').version;
  const ioredisVersion = require('ioredis/package.json').version;
  const connection = redisConnection(args);
  const queueName = `every-second-${Date.now().toString(36)}-${process.pid}`;
  const keyPattern = `${args.prefix}:${queueName}:*`;

  const arrivals = new Arrivals();
  // Before the window is chosen nothing counts as in it.
  const window = { t0: Infinity, t1: -Infinity, received: 0 };
  const target = await startTarget(arrivals, window);

  const queue = new Queue(queueName, { connection, prefix: args.prefix });
  // A connection of the harness's own, for INFO and the leftover scan.
  const client = new Redis(connection);
  const redisVersion = /redis_version:(\S+)/.exec(await client.info('server'))?.[1] ?? null;
  log(
    `bullmq ${bullmqVersion} (ioredis ${ioredisVersion}), Redis ${redisVersion} at ` +
      `${connection.host}:${connection.port} db ${connection.db}, queue ${args.prefix}:${queueName}`,
  );

  const workers = [];
  let cleanedUp = null;
  const cleanup = () => {
    cleanedUp ??= (async () => {
      // No new iterations once the schedulers are gone (a worker taking a fire then finds
      // no scheduler and schedules nothing), then the workers finish what they hold.
      const report = {};
      try {
        await removeSchedulers(queue, args.jobs);
        await Promise.all(workers.map(stopWorker));
        report.job_counts_at_end = await queue.getJobCounts(
          'completed',
          'failed',
          'active',
          'wait',
          'delayed',
        );
        await queue.obliterate({ force: true });
        report.leftover_keys_deleted = await deleteLeftovers(client, keyPattern);
      } catch (err) {
        log(`cleanup: ${err.message}`);
        report.error = err.message;
      } finally {
        await Promise.all(workers.map(stopWorker));
        await queue.close().catch(() => {});
        client.disconnect();
        target.server.closeAllConnections();
        target.server.close();
      }
      return report;
    })();
    return cleanedUp;
  };
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, async () => {
      log(`${signal}: removing the schedulers and the queue`);
      await cleanup();
      process.exit(130);
    });
  }

  try {
    const env = {
      BENCH_TARGET_URL: target.url,
      BENCH_QUEUE: queueName,
      BENCH_PREFIX: args.prefix,
      BENCH_CONCURRENCY: String(args.concurrency),
      BENCH_REDIS_HOST: connection.host,
      BENCH_REDIS_PORT: String(connection.port),
      BENCH_REDIS_DB: String(connection.db),
      ...(connection.password ? { BENCH_REDIS_PASSWORD: connection.password } : {}),
    };
    for (let i = 0; i < args.workers; i++) workers.push(startWorker(i, env));
    await Promise.all(workers.map((w) => w.ready));

    const created = performance.now();
    const template = {
      name: 'fire',
      ...(args.removeOnComplete !== undefined
        ? { opts: { removeOnComplete: args.removeOnComplete } }
        : {}),
    };
    for (let from = 0; from < args.jobs; from += 200) {
      const batch = [];
      for (let i = from; i < Math.min(from + 200, args.jobs); i++) {
        batch.push(
          queue.upsertJobScheduler(
            `job-${i}`,
            { pattern: '* * * * * *' },
            { ...template, data: { job: i } },
          ),
        );
      }
      await Promise.all(batch);
    }
    log(
      `created ${args.jobs} job schedulers in ${((performance.now() - created) / 1000).toFixed(1)} s; ` +
        `warming up ${args.warmup} s`,
    );
    await sleep(args.warmup * 1000);

    // The window: whole seconds of the wall clock.
    const t0 = (Math.floor(Date.now() / 1000) + 1) * 1000;
    const t1 = t0 + args.duration * 1000;
    window.t0 = t0;
    window.t1 = t1;
    await sleep(t0 - Date.now());
    const workerPids = workers.map((w) => w.pid);
    const redisPids = redisServerPids();
    const before = usage(workerPids, redisPids);
    log(`measuring ${args.duration} s from ${new Date(t0).toISOString()}`);
    await sleep(Math.max(0, t1 - Date.now()));
    const after = usage(workerPids, redisPids);

    // Let the window's fires arrive: until all have, or none has for 5 s (a fire skipped
    // by the scheduler never arrives), or --settle runs out.
    const expected = args.jobs * args.duration;
    const settleUntil = Date.now() + args.settle * 1000;
    let last = window.received;
    let lastChange = Date.now();
    while (Date.now() < settleUntil) {
      const firsts = deliveries(arrivals, args.jobs, t0, t1);
      if (firsts.delivered >= expected) break;
      if (window.received !== last) {
        last = window.received;
        lastChange = Date.now();
      } else if (Date.now() - lastChange > 5000) {
        break;
      }
      await sleep(Math.min(1000, 200 + args.jobs / 100));
    }
    // Arrivals a little after the last expected one still count as duplicates.
    await sleep(500);

    const got = deliveries(arrivals, args.jobs, t0, t1);
    const missedCauses = missedByCause(arrivals, args.jobs, t0, t1);
    const clockDriftMs = round2(Date.now() - nowUs() / 1000);
    const cleanupReport = await cleanup();

    const secs = args.duration;
    const processes = workers.map((w, i) => ({
      process: w.name,
      pid: w.pid,
      cpu_s: round2(after.workers[i].cpu - before.workers[i].cpu),
      cpu_cores: round2((after.workers[i].cpu - before.workers[i].cpu) / secs),
      rss_mib_start: round1(before.workers[i].rss),
      rss_mib_end: round1(after.workers[i].rss),
      rss_mib_peak: round1(after.workers[i].peak),
    }));
    const redisProcesses = redisPids.map((pid, i) => ({
      process: 'redis-server',
      pid,
      cpu_s:
        before.redis[i] === null || after.redis[i] === null
          ? null
          : round2(after.redis[i] - before.redis[i]),
      cpu_cores:
        before.redis[i] === null || after.redis[i] === null
          ? null
          : round2((after.redis[i] - before.redis[i]) / secs),
    }));
    const counters = {};
    for (const w of workers) {
      for (const [k, v] of Object.entries(w.stats ?? {})) counters[k] = (counters[k] ?? 0) + v;
    }
    const workerCpu = processes.reduce((s, p) => s + p.cpu_s, 0);
    const redisCpu = redisProcesses.reduce((s, p) => s + (p.cpu_s ?? 0), 0);
    const summary = {
      peer: 'bullmq',
      bullmq_version: bullmqVersion,
      ioredis_version: ioredisVersion,
      node_version: process.version,
      redis_version: redisVersion,
      workload: 'EverySecond',
      pattern: '* * * * * *',
      jobs: args.jobs,
      duration_s: secs,
      warmup_s: args.warmup,
      window_start: new Date(t0).toISOString(),
      workers: args.workers,
      concurrency: args.concurrency,
      remove_on_complete: args.removeOnComplete ?? null,
      fires_due: got.expected,
      fires_due_per_s: round1(got.expected / secs),
      executions_per_s_at_target: round1(got.delivered / secs),
      delivered: got.delivered,
      delivered_after_window: got.afterWindow,
      missed_fires: got.missed,
      missed_by_cause: missedCauses,
      duplicate_deliveries: got.duplicates,
      off_second_fires: got.offSecond,
      unknown_job_arrivals: got.foreign,
      lag_ms: lagSummary(got.lags),
      taken_by_worker_lag_ms: lagSummary(got.taken),
      processes: [...processes, ...redisProcesses],
      workers_cpu_s: round2(workerCpu),
      redis_cpu_s: round2(redisCpu),
      harness_cpu_s: round2(after.self - before.self),
      worker_counters: counters,
      bullmq_job_counts_at_end: cleanupReport.job_counts_at_end ?? null,
      redis: { ...connection, password: undefined, prefix: args.prefix, queue: queueName },
      cleanup: {
        leftover_keys_deleted: cleanupReport.leftover_keys_deleted ?? null,
        error: cleanupReport.error ?? null,
      },
      clock_drift_ms: clockDriftMs,
    };

    log(
      '| peer | jobs | workers × concurrency | window s | exec/s (target) | missed | dup | ' +
        'lag p50 / p90 / p99 / max ms | CPU s workers | CPU s redis-server | peak RSS MiB workers |',
    );
    log('|---|---|---|---|---|---|---|---|---|---|---|');
    const lag = summary.lag_ms;
    process.stdout.write(
      `| BullMQ ${bullmqVersion} | ${args.jobs} | ${args.workers} × ${args.concurrency} | ${secs} | ` +
        `${summary.executions_per_s_at_target} | ${got.missed} | ${got.duplicates} | ` +
        `${lag.p50} / ${lag.p90} / ${lag.p99} / ${lag.max} | ` +
        `${processes.map((p) => p.cpu_s).join(' + ')} | ` +
        `${redisProcesses.length ? round2(redisCpu) : 'n/a'} | ` +
        `${processes.map((p) => p.rss_mib_peak).join(' / ')} |\n`,
    );
    process.stdout.write(`${JSON.stringify(summary)}\n`);
  } finally {
    await cleanup();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    log(err.stack || String(err));
    process.exit(1);
  },
);
