import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** The machine's real PostgreSQL (CI starts it in .ci/run). Override with FERRY_TEST_POSTGRES. */
export const POSTGRES_URL = process.env.FERRY_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface TestSchema {
  /** A connection URL whose search_path is the new schema. */
  url: string;
  schema: string;
  drop(): Promise<void>;
}

/** Creates a throwaway schema so suites never see each other's tables; `drop` removes it. */
export async function createTestSchema(): Promise<TestSchema> {
  const schema = `ferry_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: POSTGRES_URL });
  await admin.connect().catch((error: Error) => {
    throw new Error(`PostgreSQL is not reachable at ${POSTGRES_URL} (${error.message}); .ci/run starts it.`);
  });
  try {
    await admin.query(`create schema ${schema}`);
  } finally {
    await admin.end();
  }
  const url = new URL(POSTGRES_URL);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return {
    url: url.toString(),
    schema,
    async drop() {
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      try {
        await client.query(`drop schema if exists ${schema} cascade`);
      } finally {
        await client.end();
      }
    },
  };
}
