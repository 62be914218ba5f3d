import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../src/api/ids.js';
import type { ResponseObject } from '../../src/api/wire.js';
import { CreateResponseRequest } from '../../src/api/create-response.js';
import { parseOrThrow } from '../../src/api/validation.js';
import { initialResponse } from '../../src/engine/engine.js';
import { openStore, type QueryObserver } from '../../src/store/open.js';
import type { SqlStore } from '../../src/store/sql-store.js';
import type { StoredItem } from '../../src/store/types.js';
import { createTestSchema, type TestSchema } from '../support/postgres.js';

interface Target {
  open(onQuery?: QueryObserver): Promise<SqlStore>;
  cleanup(): Promise<void>;
}

const targets: Record<string, () => Promise<Target>> = {
  sqlite: async () => {
    const directory = mkdtempSync(join(tmpdir(), 'ferry-store-'));
    return {
      open: (onQuery) => openStore({ database: join(directory, 'ferry.db'), onQuery }),
      cleanup: async () => rmSync(directory, { recursive: true, force: true }),
    };
  },
  postgres: async () => {
    const schema: TestSchema = await createTestSchema();
    return { open: (onQuery) => openStore({ database: schema.url, onQuery }), cleanup: () => schema.drop() };
  },
};

function message(role: string, text: string): StoredItem {
  const id = newId('msg');
  return {
    id,
    body: { id, type: 'message', role, content: [{ type: 'input_text', text }], status: 'completed' },
  };
}

function finished(text: string, overrides: Partial<ResponseObject> = {}): ResponseObject {
  const response = initialResponse(
    newId('resp'),
    parseOrThrow(CreateResponseRequest, { model: 'm', input: 'x' }),
    'm',
  );
  const id = newId('msg');
  response.output.push({
    id,
    type: 'message',
    status: 'completed',
    role: 'assistant',
    content: [{ type: 'output_text', text, annotations: [], logprobs: [] }],
  });
  response.status = 'completed';
  return { ...response, ...overrides };
}

/** One suite, run against every Store implementation. */
describe.each(Object.keys(targets))('store conformance: %s', (name) => {
  let target: Target;
  let store: SqlStore;
  beforeAll(async () => {
    target = await targets[name]!();
    store = await target.open();
  });
  afterAll(async () => {
    await store?.close();
    await target?.cleanup();
  });

  it('migrates idempotently, also when opened again', async () => {
    const second = await target.open();
    await second.ping();
    await second.close();
  });

  it('creates, reads and deletes a response with its items, scoped to its tenant', async () => {
    const response = finished('hello');
    const input = [message('user', 'hi')];
    await store.createResponse({
      tenant: 't1',
      response,
      ancestors: [],
      inputItems: input,
      expiresAt: 2_000_000_000,
    });
    expect(await store.getResponse('t1', response.id)).toEqual(response);
    expect(await store.getResponse('t2', response.id)).toBeUndefined();
    expect(await store.deleteResponse('t2', response.id)).toBe(false);
    expect(await store.listInputItems('t2', response.id, { limit: 10, order: 'asc' })).toBeUndefined();
    const items = await store.findItems('t1', [input[0]!.id, response.output[0]!.id, 'msg_missing']);
    expect([...items.keys()].sort()).toEqual([input[0]!.id, response.output[0]!.id].sort());
    expect((await store.findItems('t2', [input[0]!.id])).size).toBe(0);
    expect(await store.deleteResponse('t1', response.id)).toBe(true);
    expect(await store.getResponse('t1', response.id)).toBeUndefined();
    expect((await store.findItems('t1', [input[0]!.id])).size).toBe(0);
  });

  it('keeps a response stored while another transaction is open out of that transaction', async () => {
    const response = finished('outside');
    let stored: Promise<void> | undefined;
    await expect(
      store.db.transaction().execute(async (trx) => {
        await trx.selectFrom('responses').select('id').limit(1).execute();
        stored = store.createResponse({
          tenant: 't1',
          response,
          ancestors: [],
          inputItems: [message('user', 'hi')],
          expiresAt: 2e9,
        });
        await new Promise((resolve) => setTimeout(resolve, 20));
        throw new Error('rolled back');
      }),
    ).rejects.toThrow('rolled back');
    await stored;
    expect(await store.getResponse('t1', response.id)).toEqual(response);
  });

  it('stores responses created together, and one that cannot be stored fails alone', async () => {
    const stored = finished('first');
    await store.createResponse({
      tenant: 't1',
      response: stored,
      ancestors: [],
      inputItems: [],
      expiresAt: 2e9,
    });
    // Created in the same turn of the event loop: on SQLite these share one transaction.
    const together = [finished('a'), finished('b'), finished('c')];
    const outcomes = await Promise.allSettled([
      ...together.map((response) =>
        store.createResponse({
          tenant: 't1',
          response,
          ancestors: [],
          inputItems: [message('user', response.id)],
          expiresAt: 2e9,
        }),
      ),
      // Its id is taken: only this one may fail.
      store.createResponse({
        tenant: 't1',
        response: { ...finished('duplicate'), id: stored.id },
        ancestors: [],
        inputItems: [],
        expiresAt: 2e9,
      }),
    ]);
    expect(outcomes.map((outcome) => outcome.status)).toEqual([
      'fulfilled',
      'fulfilled',
      'fulfilled',
      'rejected',
    ]);
    for (const response of together) {
      expect(await store.getResponse('t1', response.id)).toEqual(response);
      const page = await store.listInputItems('t1', response.id, { limit: 10, order: 'asc' });
      expect(page?.data.map((item) => item.body.content)).toEqual([
        [{ type: 'input_text', text: response.id }],
      ]);
    }
    expect(await store.getResponse('t1', stored.id)).toEqual(stored);
  });

  it('pages input items in both orders with after and has_more', async () => {
    const response = finished('x');
    const input = Array.from({ length: 5 }, (_, i) => message('user', `m${i}`));
    await store.createResponse({
      tenant: 't',
      response,
      ancestors: [],
      inputItems: input,
      expiresAt: 2_000_000_000,
    });
    const texts = (page: { data: StoredItem[] }) =>
      page.data.map((item) => (item.body.content as { text: string }[])[0]!.text);
    const first = (await store.listInputItems('t', response.id, { limit: 2, order: 'desc' }))!;
    expect(texts(first)).toEqual(['m4', 'm3']);
    expect(first.hasMore).toBe(true);
    const next = (await store.listInputItems('t', response.id, {
      limit: 2,
      order: 'desc',
      after: first.data[1]!.id,
    }))!;
    expect(texts(next)).toEqual(['m2', 'm1']);
    const last = (await store.listInputItems('t', response.id, {
      limit: 2,
      order: 'desc',
      after: next.data[1]!.id,
    }))!;
    expect(texts(last)).toEqual(['m0']);
    expect(last.hasMore).toBe(false);
    const ascending = (await store.listInputItems('t', response.id, {
      limit: 10,
      order: 'asc',
      after: input[1]!.id,
    }))!;
    expect(texts(ascending)).toEqual(['m2', 'm3', 'm4']);
  });

  it('loads a whole previous_response_id chain in order, skipping deleted links', async () => {
    const path: string[] = [];
    const expected: string[] = [];
    for (let turn = 0; turn < 4; turn++) {
      const input = message('user', `q${turn}`);
      const response = finished(`a${turn}`, { previous_response_id: path.at(-1) ?? null });
      await store.createResponse({
        tenant: 'c',
        response,
        ancestors: [...path],
        inputItems: [input],
        expiresAt: 2_000_000_000,
      });
      path.push(response.id);
      expected.push(`q${turn}`, `a${turn}`);
    }
    const chain = (await store.loadChain('c', path.at(-1)!))!;
    expect(chain.path).toEqual(path);
    const text = (item: StoredItem) => (item.body.content as { text: string }[])[0]!.text;
    expect(chain.items.map(text)).toEqual(expected);
    expect(await store.loadChain('other', path.at(-1)!)).toBeUndefined();
    await store.deleteResponse('c', path[1]!);
    const afterOne = (await store.loadChain('c', path.at(-1)!))!;
    expect(afterOne.items.map(text)).toEqual(['q0', 'a0', 'q2', 'a2', 'q3', 'a3']);
    expect(afterOne.path).toEqual([path[0], path[2], path[3]]);
    // The next link too, then the first: what is left stays in order.
    await store.deleteResponse('c', path[2]!);
    expect((await store.loadChain('c', path.at(-1)!))!.items.map(text)).toEqual(['q0', 'a0', 'q3', 'a3']);
    await store.deleteResponse('c', path[0]!);
    const last = (await store.loadChain('c', path.at(-1)!))!;
    expect(last.path).toEqual([path[3]]);
    expect(last.items.map(text)).toEqual(['q3', 'a3']);
  });

  it('hangs a follow-up from the nearest stored ancestor when the one it continues was deleted meanwhile', async () => {
    const first = finished('a0');
    await store.createResponse({
      tenant: 'd',
      response: first,
      ancestors: [],
      inputItems: [],
      expiresAt: 2e9,
    });
    const second = finished('a1', { previous_response_id: first.id });
    await store.createResponse({
      tenant: 'd',
      response: second,
      ancestors: [first.id],
      inputItems: [],
      expiresAt: 2e9,
    });
    // A third turn loaded the chain [first, second]; second is deleted before the turn is stored.
    await store.deleteResponse('d', second.id);
    const third = finished('a2', { previous_response_id: second.id });
    await store.createResponse({
      tenant: 'd',
      response: third,
      ancestors: [first.id, second.id],
      inputItems: [],
      expiresAt: 2e9,
    });
    const chain = (await store.loadChain('d', third.id))!;
    expect(chain.path).toEqual([first.id, third.id]);
    expect(chain.items.map((item) => item.id)).toEqual([first.output[0]!.id, third.output[0]!.id]);
    // What the client sent is kept as it was.
    expect((await store.getResponse('d', third.id))!.previous_response_id).toBe(second.id);
  });

  it('stores a link to the previous response, not the whole chain, however deep the conversation', async () => {
    const path: string[] = [];
    for (let turn = 0; turn < 30; turn++) {
      const response = finished(`t${turn}`, { previous_response_id: path.at(-1) ?? null });
      await store.createResponse({
        tenant: 'deep',
        response,
        ancestors: [...path],
        inputItems: [],
        expiresAt: 2e9,
      });
      path.push(response.id);
    }
    const rows = await store.db
      .selectFrom('responses')
      .select(['id', 'parent_id', 'ancestors'])
      .where('tenant', '=', 'deep')
      .execute();
    const parentOf = new Map(rows.map((row) => [row.id, row.parent_id]));
    expect(path.map((id) => parentOf.get(id))).toEqual([null, ...path.slice(0, -1)]);
    expect(new Set(rows.map((row) => row.ancestors))).toEqual(new Set(['[]']));
    expect((await store.loadChain('deep', path.at(-1)!))!.path).toEqual(path);
  });

  it('serves the same chain after a restart as before it (SQLite keeps recent chains in memory)', async () => {
    const path: string[] = [];
    for (let turn = 0; turn < 3; turn++) {
      // As the engine does: a follow-up loads the chain it continues first.
      if (turn > 0) await store.loadChain('warm', path.at(-1)!);
      const response = finished(`r${turn}`, { previous_response_id: path.at(-1) ?? null });
      await store.createResponse({
        tenant: 'warm',
        response,
        ancestors: [...path],
        inputItems: [message('user', `u${turn}`), message('developer', `d${turn}`)],
        expiresAt: 2_000_000_000,
      });
      path.push(response.id);
    }
    const served = (await store.loadChain('warm', path.at(-1)!))!;
    const reopened = await target.open();
    try {
      const fromDisk = (await reopened.loadChain('warm', path.at(-1)!))!;
      expect(served).toEqual(fromDisk);
      expect(served.items).toHaveLength(9);
    } finally {
      await reopened.close();
    }
    // A caller changing what it got must not change what the next caller gets.
    served.response.status = 'failed';
    try {
      (served.items[0]!.body as { role: string }).role = 'assistant';
    } catch {
      // Shared items are frozen: that is one way to keep them unchanged.
    }
    const again = (await store.loadChain('warm', path.at(-1)!))!;
    expect(again.response.status).toBe('completed');
    expect(again.items[0]!.body.role).toBe('user');
  });

  it('forgets a purged response in chains that continue it', async () => {
    const first = finished('old');
    await store.createResponse({
      tenant: 'purge',
      response: first,
      ancestors: [],
      inputItems: [message('user', 'old question')],
      expiresAt: 1,
    });
    const second = finished('new', { previous_response_id: first.id });
    await store.createResponse({
      tenant: 'purge',
      response: second,
      ancestors: [first.id],
      inputItems: [message('user', 'new question')],
      expiresAt: 2_000_000_000,
    });
    expect((await store.loadChain('purge', second.id))!.items).toHaveLength(4);
    await store.purgeExpired(1_000, 100);
    const chain = (await store.loadChain('purge', second.id))!;
    expect(chain.path).toEqual([second.id]);
    expect(chain.items.map((item) => item.id)).toEqual([expect.any(String), second.output[0]!.id]);
    expect(chain.items).toHaveLength(2);
  });

  it('keeps the rest of a chain in order when responses in its middle expire', async () => {
    const path: string[] = [];
    for (const expiresAt of [2e9, 1, 1, 2e9]) {
      const response = finished(`e${path.length}`, { previous_response_id: path.at(-1) ?? null });
      await store.createResponse({
        tenant: 'middle',
        response,
        ancestors: [...path],
        inputItems: [],
        expiresAt,
      });
      path.push(response.id);
    }
    await store.purgeExpired(1_000, 100);
    const chain = (await store.loadChain('middle', path[3]!))!;
    expect(chain.path).toEqual([path[0], path[3]]);
    expect(chain.items.map((item) => (item.body.content as { text: string }[])[0]!.text)).toEqual([
      'e0',
      'e3',
    ]);
  });

  async function enqueue(tenant = 'j', backend = 'b1', events = 0) {
    const response = finished('queued', { status: 'queued', background: true, output: [] });
    const stored = Array.from({ length: events }, (_, sequence) => ({
      sequence,
      type: 't',
      data: `{"n":${sequence}}`,
    }));
    await store.enqueueBackground(
      { tenant, response, ancestors: [], inputItems: [message('user', 'q')], expiresAt: 2_000_000_000 },
      { backend, payload: JSON.stringify({ stream: events > 0 }), events: stored },
    );
    return response;
  }
  const keepTwo = 2;

  it('claims jobs oldest first, per backend, never twice, and takes over expired leases', async () => {
    const first = await enqueue('j', 'claim-a');
    const second = await enqueue('j', 'claim-a');
    await enqueue('j', 'claim-b');
    const one = await store.claimJob('worker-1', ['claim-a'], 60_000, keepTwo);
    expect(one).toMatchObject({ responseId: first.id, attempts: 1, tenant: 'j', backend: 'claim-a' });
    expect(one!.response.status).toBe('queued');
    const two = await store.claimJob('worker-2', ['claim-a'], 60_000, keepTwo);
    expect(two!.responseId).toBe(second.id);
    expect(await store.claimJob('worker-3', ['claim-a'], 60_000, keepTwo)).toBeUndefined();
    expect(await store.renewLease(first.id, 'worker-1', 60_000)).toBe('held');
    expect(await store.renewLease(first.id, 'worker-2', 60_000)).toBe('lost');
    // An expired lease is taken over by the next claimer, counting a new start.
    expect(await store.renewLease(second.id, 'worker-2', -1)).toBe('held');
    const taken = await store.claimJob('worker-3', ['claim-a'], 60_000, keepTwo);
    expect(taken).toMatchObject({ responseId: second.id, attempts: 2 });
    expect(await store.renewLease(second.id, 'worker-2', 60_000)).toBe('lost');
    expect(await store.finishJob('j', second.id, 'worker-2', () => ({ response: second, events: [] }))).toBe(
      'lost',
    );
  });

  it('claims across backends in queue order, and an expired lease before younger queued jobs', async () => {
    // Queue order is by the millisecond: each job is queued in a later one.
    const later = () => new Promise((resolve) => setTimeout(resolve, 3));
    const first = await enqueue('o', 'order-x');
    await later();
    const second = await enqueue('o', 'order-y');
    await later();
    const third = await enqueue('o', 'order-x');
    const both = ['order-x', 'order-y'];
    expect((await store.claimJob('w1', both, -1, keepTwo))!.responseId).toBe(first.id);
    // The first job's lease has run out: it is older than the jobs still queued.
    expect((await store.claimJob('w2', both, 60_000, keepTwo))!.responseId).toBe(first.id);
    expect((await store.claimJob('w2', both, 60_000, keepTwo))!.responseId).toBe(second.id);
    expect((await store.claimJob('w2', ['order-y', 'order-x'], 60_000, keepTwo))!.responseId).toBe(third.id);
    expect(await store.claimJob('w2', both, 60_000, keepTwo)).toBeUndefined();
  });

  it('never hands one job to two concurrent claimers', async () => {
    const ids = new Set<string>();
    for (let i = 0; i < 20; i++) ids.add((await enqueue('race', 'race-backend')).id);
    // Two connections contend only on PostgreSQL; SQLite serves one process per file.
    const other = name === 'postgres' ? await target.open() : store;
    try {
      const claims = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          (i % 2 ? store : other).claimJob(`w${i}`, ['race-backend'], 60_000, keepTwo),
        ),
      );
      const claimed = claims.filter((claim) => claim !== undefined).map((claim) => claim!.responseId);
      expect(new Set(claimed).size).toBe(claimed.length);
      expect(new Set(claimed)).toEqual(ids);
    } finally {
      if (other !== store) await other.close();
    }
  });

  it('finishes a job with its events, and a cancel request wins over a late finish', async () => {
    const response = await enqueue('f', 'finish-backend', 2);
    const job = (await store.claimJob('w', ['finish-backend'], 60_000, keepTwo))!;
    await store.appendEvents(response.id, [{ sequence: 2, type: 'x', data: '{}' }]);
    expect(await store.requestCancel('f', response.id, () => ({ response, events: [] }))).toMatchObject({
      state: 'requested',
    });
    expect(await store.renewLease(response.id, 'w', 60_000)).toBe('cancel_requested');
    expect(await store.cancelRequestedFor('w')).toEqual([response.id]);
    const outcome = await store.finishJob('f', response.id, 'w', (cancelRequested) => ({
      response: { ...job.response, status: cancelRequested ? 'cancelled' : 'completed' },
      events: [{ sequence: 3, type: 'response.failed', data: '{"end":true}' }],
    }));
    expect(outcome).toBe('finished');
    expect((await store.getResponse('f', response.id))!.status).toBe('cancelled');
    expect((await store.readEvents(response.id, -1, 10)).map((event) => event.sequence)).toEqual([
      0, 1, 2, 3,
    ]);
    expect((await store.readEvents(response.id, 1, 1)).map((event) => event.sequence)).toEqual([2]);
    expect(await store.requestCancel('f', response.id, () => ({ response, events: [] }))).toMatchObject({
      state: 'terminal',
    });
    expect(await store.requestCancel('other', response.id, () => ({ response, events: [] }))).toEqual({
      state: 'not_found',
    });
  });

  it('writes nothing when a worker that lost its lease finishes, and everything for the new owner', async () => {
    const response = await enqueue('l', 'lost-backend', 2);
    await store.claimJob('w1', ['lost-backend'], -1, keepTwo);
    await store.claimJob('w2', ['lost-backend'], 60_000, keepTwo);
    const done = { ...response, status: 'completed' as const, output: finished('answer').output };
    const late = () => ({
      response: done,
      events: [{ sequence: 2, type: 'response.completed', data: '{}' }],
    });
    expect(await store.finishJob('l', response.id, 'w1', late)).toBe('lost');
    expect((await store.getResponse('l', response.id))!.status).toBe('queued');
    expect((await store.readEvents(response.id, -1, 10)).map((event) => event.sequence)).toEqual([0, 1]);
    expect((await store.loadChain('l', response.id))!.items).toHaveLength(1);
    expect(await store.finishJob('l', response.id, 'w2', late)).toBe('finished');
    expect(await store.getResponse('l', response.id)).toEqual(done);
    expect((await store.readEvents(response.id, -1, 10)).map((event) => event.sequence)).toEqual([0, 1, 2]);
    expect((await store.loadChain('l', response.id))!.items).toHaveLength(2);
    // Finished means finished: the job is never handed out again.
    expect(await store.claimJob('w3', ['lost-backend'], 60_000, keepTwo)).toBeUndefined();
  });

  it('queues and finishes a job with more rows than one statement takes (the transaction path)', async () => {
    const response = finished('queued', { status: 'queued', background: true, output: [] });
    const inputs = Array.from({ length: 600 }, (_, n) => message('user', `q${n}`));
    const events = Array.from({ length: 3 }, (_, sequence) => ({ sequence, type: 't', data: '{}' }));
    await store.enqueueBackground(
      { tenant: 'big', response, ancestors: [], inputItems: inputs, expiresAt: 2e9 },
      { backend: 'big-backend', payload: '{}', events },
    );
    await store.claimJob('w', ['big-backend'], 60_000, keepTwo);
    const output = inputs.map((input) => ({
      ...finished('a').output[0]!,
      id: input.id.replace('msg', 'out'),
    }));
    const done = { ...response, status: 'completed' as const, output };
    const pending = [{ sequence: 2, type: 'response.completed', data: '{}' }];
    expect(await store.finishJob('big', response.id, 'w', () => ({ response: done, events: pending }))).toBe(
      'finished',
    );
    expect(await store.getResponse('big', response.id)).toEqual(done);
    expect((await store.loadChain('big', response.id))!.items).toHaveLength(1_200);
    expect((await store.readEvents(response.id, -1, 10)).map((event) => event.sequence)).toEqual([0, 1, 2]);
  });

  it('finishing a job replaces the response in place, with its output items', async () => {
    const response = await enqueue('u', 'replace-backend');
    await store.claimJob('w', ['replace-backend'], 60_000, keepTwo);
    const done = { ...response, status: 'completed' as const, output: finished('answer').output };
    expect(await store.finishJob('u', response.id, 'w', () => ({ response: done, events: [] }))).toBe(
      'finished',
    );
    expect(await store.getResponse('u', response.id)).toEqual(done);
    // The input item and the one output item.
    expect((await store.loadChain('u', response.id))!.items).toHaveLength(2);
  });

  it('cancels a queued job at once and resets an interrupted start', async () => {
    const queued = await enqueue('c', 'cancel-backend', 2);
    const outcome = await store.requestCancel('c', queued.id, (response, payload) => {
      expect(JSON.parse(payload)).toEqual({ stream: true });
      return {
        response: { ...response, status: 'cancelled' },
        events: [{ sequence: 2, type: 'end', data: '{}' }],
      };
    });
    expect(outcome).toMatchObject({ state: 'cancelled', response: { status: 'cancelled' } });
    expect(await store.claimJob('w', ['cancel-backend'], 60_000, keepTwo)).toBeUndefined();

    const interrupted = await enqueue('c', 'reset-backend', 2);
    await store.claimJob('w1', ['reset-backend'], -1, keepTwo);
    await store.appendEvents(interrupted.id, [{ sequence: 2, type: 'partial', data: '{}' }]);
    const again = await store.claimJob('w2', ['reset-backend'], 60_000, keepTwo);
    expect(again).toMatchObject({ responseId: interrupted.id, attempts: 2 });
    expect((await store.readEvents(interrupted.id, -1, 10)).map((event) => event.sequence)).toEqual([0, 1]);
    await store.releaseJob(interrupted.id, 'w2');
    expect(await store.claimJob('w3', ['reset-backend'], 60_000, keepTwo)).toMatchObject({ attempts: 2 });
  });

  it('hands out an idempotency key once, even to concurrent claimers', async () => {
    // Two connections contend only on PostgreSQL; SQLite serves one process per file.
    const other = name === 'postgres' ? await target.open() : store;
    try {
      const claims = await Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          (i % 2 ? store : other).claimIdempotencyKey('t', 'k1', 'fp', 60_000, 3600),
        ),
      );
      expect(claims.filter((claim) => claim.state === 'acquired')).toHaveLength(1);
      expect(claims.filter((claim) => claim.state === 'pending')).toHaveLength(5);
    } finally {
      if (other !== store) await other.close();
    }
    expect(await store.claimIdempotencyKey('t', 'k1', 'other', 60_000, 3600)).toEqual({ state: 'mismatch' });
    await store.completeIdempotencyKey('t', 'k1', { kind: 'json', status: 200, body: { ok: true } });
    expect(await store.claimIdempotencyKey('t', 'k1', 'fp', 60_000, 3600)).toEqual({
      state: 'done',
      outcome: { kind: 'json', status: 200, body: { ok: true } },
    });
    expect(await store.claimIdempotencyKey('other-tenant', 'k1', 'fp', 60_000, 3600)).toEqual({
      state: 'acquired',
    });
    // A pending key whose request died is taken over; an expired key is free again.
    expect(await store.claimIdempotencyKey('t', 'k2', 'fp', -1, 3600)).toEqual({ state: 'acquired' });
    expect(await store.claimIdempotencyKey('t', 'k2', 'fp', 60_000, 3600)).toEqual({ state: 'acquired' });
    expect(await store.claimIdempotencyKey('t', 'k3', 'fp', 60_000, -10)).toEqual({ state: 'acquired' });
    expect(await store.claimIdempotencyKey('t', 'k3', 'different', 60_000, 3600)).toEqual({
      state: 'acquired',
    });
    await store.releaseIdempotencyKey('t', 'k3');
    expect(await store.claimIdempotencyKey('t', 'k3', 'again', 60_000, 3600)).toEqual({ state: 'acquired' });
  });

  it('purges expired responses with everything attached, and expired idempotency keys', async () => {
    const old = await enqueue('p', 'purge-backend', 2);
    const kept = finished('kept');
    await store.createResponse({
      tenant: 'p',
      response: kept,
      ancestors: [],
      inputItems: [message('user', 'x')],
      expiresAt: 4_000_000_000,
    });
    await store.claimIdempotencyKey('p', 'expired', 'fp', 60_000, -10);
    await store.completeIdempotencyKey('p', 'expired', {
      kind: 'log',
      status: 200,
      body: { response_id: 'resp_unstored' },
    });
    await store.appendEvents('resp_unstored', [{ sequence: 0, type: 't', data: '{}' }]);
    await store.claimIdempotencyKey('p', 'fresh', 'fp', 60_000, 2_000_000_000);

    // enqueue() stores with expiresAt 2_000_000_000; purge as if it were later than that.
    const purged = await store.purgeExpired(3_000_000_000, 1000);
    expect(purged.responses).toBeGreaterThanOrEqual(1);
    expect(purged.idempotencyKeys).toBeGreaterThanOrEqual(1);
    expect(await store.getResponse('p', old.id)).toBeUndefined();
    expect(await store.hasEvents(old.id)).toBe(false);
    expect(await store.claimJob('w', ['purge-backend'], 60_000, 2)).toBeUndefined();
    expect(await store.getResponse('p', kept.id)).toBeDefined();
    expect(await store.hasEvents('resp_unstored')).toBe(false);
    expect(await store.claimIdempotencyKey('p', 'fresh', 'other', 60_000, 3600)).toEqual({
      state: 'mismatch',
    });
  });

  it('purges in bounded batches, one replica at a time', async () => {
    for (let i = 0; i < 5; i++) await enqueue('b', 'batch-backend');
    expect((await store.purgeExpired(3_000_000_000, 2)).responses).toBe(2);
    if (name !== 'postgres') return;
    const other = await target.open();
    try {
      // While another replica purges (holds the lock), this one skips the round.
      await other.db.transaction().execute(async (trx) => {
        await sql`select pg_advisory_xact_lock(${0x46455259}, 2)`.execute(trx);
        expect(await store.purgeExpired(3_000_000_000, 2)).toEqual({ responses: 0, idempotencyKeys: 0 });
      });
      expect((await store.purgeExpired(3_000_000_000, 2)).responses).toBe(2);
    } finally {
      await other.close();
    }
  });

  it('stores a long input in one go', async () => {
    const response = finished('long');
    const input = Array.from({ length: 1200 }, (_, i) => message('user', `n${i}`));
    await store.createResponse({
      tenant: 'l',
      response,
      ancestors: [],
      inputItems: input,
      expiresAt: 2_000_000_000,
    });
    const page = (await store.listInputItems('l', response.id, { limit: 100, order: 'asc' }))!;
    expect(page.data).toHaveLength(100);
    expect(page.hasMore).toBe(true);
  });

  it('creates a secret once and hands every caller (and replica) the first value', async () => {
    const name = `secret-${newId('item')}`;
    const first = await store.getOrCreateSecret(name, () => 'value-one');
    expect(first).toBe('value-one');
    // Another replica opening the same database, racing the first, gets the same value.
    const replica = await target.open();
    try {
      const values = await Promise.all([
        replica.getOrCreateSecret(name, () => 'value-two'),
        store.getOrCreateSecret(name, () => 'value-three'),
      ]);
      expect(values).toEqual(['value-one', 'value-one']);
      const racedName = `${name}-raced`;
      const raced = await Promise.all([
        replica.getOrCreateSecret(racedName, () => 'a'),
        store.getOrCreateSecret(racedName, () => 'b'),
      ]);
      expect(raced[0]).toBe(raced[1]);
    } finally {
      await replica.close();
    }
  });

  it('writes every LIMIT into the SQL, never as a bound parameter', async () => {
    // SQLite ran a statement whose LIMIT was bound about 10 µs slower per run (BENCHMARKS.md).
    const executed: string[] = [];
    const recorded = await target.open((text) => executed.push(text));
    try {
      const response = finished('limits');
      await recorded.createResponse({
        tenant: 'lim',
        response,
        ancestors: [],
        inputItems: [message('user', 'q')],
        expiresAt: 1,
      });
      await recorded.listInputItems('lim', response.id, { limit: 5, order: 'desc' });
      await recorded.readEvents(response.id, -1, 10);
      await recorded.hasEvents(response.id);
      await recorded.claimJob('limits-worker', ['limits-backend'], 60_000, 1);
      await recorded.purgeExpired(1_000, 10);
    } finally {
      await recorded.close();
    }
    const limited = executed.filter((text) => /\blimit\b/i.test(text));
    expect(limited.length).toBeGreaterThanOrEqual(5);
    expect(limited.filter((text) => /\blimit\s+(\?|\$\d+)/i.test(text))).toEqual([]);
  });
});
