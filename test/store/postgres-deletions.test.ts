import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../src/api/ids.js';
import type { ResponseObject } from '../../src/api/wire.js';
import { openStore } from '../../src/store/open.js';
import type { SqlStore } from '../../src/store/sql-store.js';
import { createTestSchema, type TestSchema } from '../support/postgres.js';

/** Ferry's advisory lock class ("FERY") and the lock deletions take turns under. */
const LOCK_CLASS = 0x46455259;
const DELETION_LOCK = 3;

const response = (previous: string | null) =>
  ({
    id: newId('resp'),
    object: 'response',
    created_at: 1,
    status: 'completed',
    previous_response_id: previous,
    output: [],
  }) as unknown as ResponseObject;

/**
 * Deleting a response moves its children's links up to its parent. Two replicas deleting a
 * response and its parent at the same moment must not leave a link to a deleted row, so
 * deletions take turns under an advisory lock.
 */
describe('deletions on PostgreSQL', () => {
  let schema: TestSchema;
  let replicaA: SqlStore;
  let replicaB: SqlStore;
  beforeAll(async () => {
    schema = await createTestSchema();
    replicaA = await openStore({ database: schema.url });
    replicaB = await openStore({ database: schema.url });
  });
  afterAll(async () => {
    await replicaA?.close();
    await replicaB?.close();
    await schema?.drop();
  });

  it('take turns across replicas, so neighbours deleted together leave the chain connected', async () => {
    const path: string[] = [];
    for (let turn = 0; turn < 4; turn++) {
      const stored = response(path.at(-1) ?? null);
      await replicaA.createResponse({
        tenant: 't',
        response: stored,
        ancestors: [...path],
        inputItems: [],
        expiresAt: 2e9,
      });
      path.push(stored.id);
    }
    const holder = new pg.Client({ connectionString: schema.url });
    await holder.connect();
    try {
      await holder.query('begin');
      await holder.query('select pg_advisory_xact_lock($1, $2)', [LOCK_CLASS, DELETION_LOCK]);
      let settled = 0;
      const deletions = [replicaA.deleteResponse('t', path[1]!), replicaB.deleteResponse('t', path[2]!)].map(
        (deletion) => deletion.finally(() => settled++),
      );
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(settled).toBe(0);
      await holder.query('commit');
      expect(await Promise.all(deletions)).toEqual([true, true]);
    } finally {
      await holder.end();
    }
    expect((await replicaB.loadChain('t', path[3]!))!.path).toEqual([path[0], path[3]]);
  });
});
