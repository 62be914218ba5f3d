import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * Runs SQLite's WAL checkpoints in a worker thread with its own connection. A checkpoint copies
 * the WAL into the database and syncs both files; left to SQLite, it happens inside whichever
 * commit crosses the threshold, on the event loop, and its fsyncs cost every request a share
 * (and some requests a lot). Durability does not change: commits are written to the WAL as
 * before. The main connection keeps a large automatic threshold as a safety net, should this
 * thread ever stop.
 */
export interface Checkpointer {
  stop(): Promise<void>;
}

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path);
db.pragma('busy_timeout = 1000');
const timer = setInterval(() => {
  try { db.pragma('wal_checkpoint(PASSIVE)'); } catch { /* busy: next round */ }
}, workerData.intervalMs);
parentPort.on('message', () => {
  clearInterval(timer);
  try { db.pragma('wal_checkpoint(PASSIVE)'); } catch {}
  db.close();
  parentPort.close();
});
`;

export function startCheckpointer(path: string, intervalMs = 200): Checkpointer {
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(WORKER, { eval: true, workerData: { path, intervalMs, driver } });
  worker.unref();
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  let stopping: Promise<void> | undefined;
  return {
    // Idempotent: a store closed twice must not wait for an exit that already happened.
    stop: () => {
      if (!stopping) {
        // Held again while it finishes its last checkpoint, so the process waits for it.
        worker.ref();
        worker.postMessage('stop');
        setTimeout(() => void worker.terminate(), 2_000).unref();
        stopping = exited;
      }
      return stopping;
    },
  };
}
