import type { QueryObserver } from '../store/open.js';
import type { Metrics } from './metrics.js';

interface QueryKind {
  operation: string;
  table: string;
}

const STATEMENT = /^\s*(select|insert|update|delete|with|create|alter|drop|begin|commit|rollback)\b/i;
// The table a statement is about: its first `from`, `into` or `update` target.
const TABLE = /\b(?:from|into|update|join)\s+"?([A-Za-z_][\w]*)"?/i;
const MAX_CACHED = 512;

/**
 * Feeds every query the store runs (through Kysely or its SQLite hot path) into the database
 * metrics. Each statement is classified once by its SQL text (operation and table; values are
 * bound parameters, so texts repeat) and the classification is cached, so a query costs a map
 * lookup and one histogram observation.
 */
export function databaseQueryObserver(metrics: Metrics): QueryObserver {
  const kinds = new Map<string, QueryKind>();
  const classify = (sql: string): QueryKind => {
    let kind = kinds.get(sql);
    if (!kind) {
      kind = classifyQuery(sql);
      if (kinds.size >= MAX_CACHED) kinds.clear();
      kinds.set(sql, kind);
    }
    return kind;
  };
  return (sql, durationMillis, failed) => {
    const { operation, table } = classify(sql);
    metrics.dbQuery(operation, table, durationMillis / 1000, failed);
  };
}

export function classifyQuery(sql: string): QueryKind {
  const statement = STATEMENT.exec(sql)?.[1]?.toLowerCase();
  const operation =
    statement === 'select' || statement === 'insert' || statement === 'update' || statement === 'delete'
      ? statement
      : statement === 'with'
        ? 'select'
        : 'other';
  const table = TABLE.exec(sql)?.[1]?.toLowerCase() ?? 'none';
  // Table names come from Ferry's own SQL, but keep the label sane whatever happens.
  return { operation, table: table.length <= 48 ? table : 'other' };
}
