import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { createApp, type CreateAppOptions, type FerryApp } from '../../src/app.js';
import { validate } from '../../src/config/load.js';
import type { FerryConfigInput } from '../../src/config/schema.js';
import { createTestSchema } from './postgres.js';
import { startRoundRobin } from './round-robin.js';

export interface RunningFerry {
  app: FerryApp;
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** An official OpenAI client pointed at Ferry (no retries, so failures show at once). */
  client: OpenAI;
  /** Raw HTTP against Ferry. */
  fetch(path: string, init?: RequestInit): Promise<Response>;
  /** Stops every instance and starts them again on the same database (a new URL). */
  restart(): Promise<void>;
  /** Every request Ferry received, with its parsed body (what real clients actually send). */
  received: ReceivedRequest[];
  close(): Promise<void>;
}

export interface ReceivedRequest {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: Record<string, unknown> | undefined;
}

/**
 * Where tests run Ferry (`FERRY_TEST_TOPOLOGY`): `sqlite` (default, a throwaway file),
 * `postgres` (a throwaway schema on the real server), or `replicas` (two Ferry instances on one
 * PostgreSQL schema behind a round-robin balancer, so consecutive calls land on different
 * replicas). A test that names its own database always gets a single instance on it.
 */
export type Topology = 'sqlite' | 'postgres' | 'replicas';
export const TOPOLOGY = (process.env.FERRY_TEST_TOPOLOGY ?? 'sqlite') as Topology;

type TestConfig = Partial<FerryConfigInput> &
  Pick<FerryConfigInput, 'backends'> & {
    /** Pins the number of Ferry instances (a test of one replica's own behaviour). */
    instances?: number;
  };

function configFor({ instances: _instances, ...config }: TestConfig, database: string): FerryConfigInput {
  return {
    host: '127.0.0.1',
    port: 0,
    logLevel: 'silent',
    ...config,
    database,
    // Tests want quick polling and a quick shutdown.
    background: { pollIntervalMs: 100, shutdownGraceSeconds: 1, ...config.background },
  } as FerryConfigInput;
}

/** Starts Ferry on a free loopback port, in the topology the test run asks for. */
export async function startFerry(config: TestConfig, options: CreateAppOptions = {}): Promise<RunningFerry> {
  const topology: Topology = config.database ? 'sqlite' : TOPOLOGY;
  let database = config.database;
  let dropDatabase: () => Promise<void> | void = () => undefined;
  if (!database && topology === 'sqlite') {
    const directory = mkdtempSync(join(tmpdir(), 'ferry-test-'));
    database = join(directory, 'ferry.db');
    dropDatabase = () => rmSync(directory, { recursive: true, force: true });
  } else if (!database) {
    const schema = await createTestSchema();
    database = schema.url;
    dropDatabase = () => schema.drop();
  }
  const instances = config.instances ?? (topology === 'replicas' ? 2 : 1);
  let apps: FerryApp[] = [];
  const received: ReceivedRequest[] = [];
  let balancer: Awaited<ReturnType<typeof startRoundRobin>> | undefined;
  const boot = async () => {
    apps = [];
    const urls: string[] = [];
    while (apps.length < instances) {
      const app = await createApp(validate(configFor(config, database)), options);
      app.server.addHook('preHandler', async (request) => {
        received.push({
          method: request.method,
          url: request.url,
          headers: { ...request.headers },
          body: request.body as Record<string, unknown> | undefined,
        });
      });
      apps.push(app);
      urls.push(await app.listen());
    }
    balancer = urls.length > 1 ? await startRoundRobin(urls) : undefined;
    return balancer?.url ?? urls[0]!;
  };
  const shutdown = async () => {
    await balancer?.close();
    await Promise.all(apps.map((each) => each.close()));
  };

  const running: RunningFerry = {
    app: undefined as unknown as FerryApp,
    url: '',
    client: undefined as unknown as OpenAI,
    fetch: (path, init) => fetch(`${running.url}${path}`, init),
    received,
    async restart() {
      await shutdown();
      await start();
    },
    async close() {
      await shutdown();
      await dropDatabase();
    },
  };
  const start = async () => {
    running.url = await boot();
    running.app = apps[0]!;
    const apiKey = Object.keys(running.app.context.config.apiKeys)[0] ?? 'sk-test';
    running.client = new OpenAI({ baseURL: `${running.url}/v1`, apiKey, maxRetries: 0, timeout: 20_000 });
  };
  await start();
  return running;
}

/** POSTs JSON and returns the response (for streams, feed it to `captureSse`). */
export function postJson(
  ferry: RunningFerry,
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Response> {
  return ferry.fetch(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}
