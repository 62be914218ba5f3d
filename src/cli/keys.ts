import { generateKey } from '../access/api-keys.js';
import { ConfigError } from '../config/load.js';
import { TenantName, type FerryConfig } from '../config/schema.js';
import { SqlApiKeyStore, type StoredApiKey } from '../store/api-keys.js';
import { openStore } from '../store/open.js';

export interface KeysFlags {
  tenant?: string;
  name?: string;
  rpm?: string;
  concurrency?: string;
  json?: boolean;
}

/**
 * `ferry keys create|list|revoke` against the configured database. `create` writes the new key
 * alone on stdout (so `KEY=$(ferry keys create --tenant a)` works) and explains on stderr; it is
 * never shown again. Running gateways accept a new key at once (an open gateway starts requiring
 * keys within `keyCacheSeconds`) and stop accepting a revoked one within `keyCacheSeconds`.
 */
export async function runKeysCommand(config: FerryConfig, args: string[], flags: KeysFlags): Promise<number> {
  const [action, ...rest] = args;
  if (action !== 'create' && action !== 'list' && action !== 'revoke') {
    throw new ConfigError(`Use 'ferry keys create', 'ferry keys list' or 'ferry keys revoke KEY_ID'.`);
  }
  const store = await openStore({ database: config.database });
  try {
    const keys = new SqlApiKeyStore(store.db);
    switch (action) {
      case 'create':
        return await create(keys, flags);
      case 'list':
        return await list(keys, flags);
      case 'revoke':
        return await revoke(keys, rest[0]);
    }
  } finally {
    await store.close();
  }
}

async function create(keys: SqlApiKeyStore, flags: KeysFlags): Promise<number> {
  if (!flags.tenant) throw new ConfigError('ferry keys create needs --tenant NAME.');
  const tenant = TenantName.safeParse(flags.tenant);
  if (!tenant.success)
    throw new ConfigError(`Invalid --tenant '${flags.tenant}': ${tenant.error.issues[0]!.message}.`);
  const { key, record } = generateKey(tenant.data, {
    name: flags.name,
    requestsPerMinute: positive(flags.rpm, '--rpm'),
    concurrentRequests: positive(flags.concurrency, '--concurrency'),
  });
  await keys.create(record);
  process.stderr.write(
    `Created API key ${record.id} for tenant '${record.tenant}'. Copy it now: Ferry keeps only its hash.\n`,
  );
  process.stdout.write(`${key}\n`);
  return 0;
}

async function list(keys: SqlApiKeyStore, flags: KeysFlags): Promise<number> {
  const all = await keys.list(flags.tenant);
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(all, null, 2)}\n`);
    return 0;
  }
  const rows = [
    ['ID', 'TENANT', 'NAME', 'KEY', 'RPM', 'CONCURRENCY', 'CREATED', 'STATUS'],
    ...all.map((key) => [
      key.id,
      key.tenant,
      key.name ?? '',
      key.hint,
      key.requestsPerMinute?.toString() ?? '-',
      key.concurrentRequests?.toString() ?? '-',
      isoSeconds(key.createdAt),
      key.revokedAt === null ? 'active' : `revoked ${isoSeconds(key.revokedAt)}`,
    ]),
  ];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  for (const row of rows) {
    process.stdout.write(
      `${row
        .map((cell, column) => cell.padEnd(widths[column]!))
        .join('  ')
        .trimEnd()}\n`,
    );
  }
  if (all.length === 0) process.stderr.write('No API keys are stored.\n');
  return 0;
}

async function revoke(keys: SqlApiKeyStore, id: string | undefined): Promise<number> {
  if (!id) throw new ConfigError('ferry keys revoke needs the key id (see ferry keys list).');
  const key: StoredApiKey | undefined = await keys.revoke(id, Math.floor(Date.now() / 1000));
  if (!key) {
    process.stderr.write(`ferry: no API key has the id '${id}'.\n`);
    return 1;
  }
  process.stdout.write(
    `Revoked API key ${key.id} (tenant '${key.tenant}') as of ${isoSeconds(key.revokedAt!)}.\n`,
  );
  return 0;
}

function positive(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isInteger(value) || value <= 0)
    throw new ConfigError(`${flag} must be a positive integer, got '${text}'.`);
  return value;
}

function isoSeconds(unix: number): string {
  return new Date(unix * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
