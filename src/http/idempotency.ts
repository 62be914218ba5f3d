import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiError, invalidRequest, toApiError } from '../api/errors.js';
import type { IdempotentOutcome } from '../store/types.js';
import type { AppContext } from './context.js';
import { streamEventLog } from './streams.js';

const KEY = /^[\x21-\x7e]{1,255}$/;
const POLL_MS = 50;

/** Lets a handler say what its outcome was, once it is known (a stream's only at its end). */
export type RecordOutcome = (outcome: IdempotentOutcome) => void;

/**
 * `Idempotency-Key` on a POST: the first request with a key runs once; a retry with the same
 * key and body gets the same result (waiting while the first still runs, streaming or not);
 * the same key with another body is a 422. Keys are stored per tenant with an expiry, so they
 * hold across restarts and replicas. Client errors are remembered like successes; a failure
 * worth retrying (5xx, a stream whose client left) frees the key again.
 */
export async function idempotent(
  context: AppContext,
  request: FastifyRequest,
  reply: FastifyReply,
  handle: (record: RecordOutcome | undefined) => Promise<unknown>,
): Promise<unknown> {
  const header = request.headers['idempotency-key'];
  if (header === undefined) return handle(undefined);
  const key = Array.isArray(header) ? header[0]! : header;
  if (!KEY.test(key)) {
    throw invalidRequest(
      'The Idempotency-Key header must be 1–255 visible ASCII characters.',
      'Idempotency-Key',
    );
  }
  const { store, config } = context;
  const tenant = request.tenant;
  const fingerprint = createHash('sha256')
    .update(`${request.method} ${request.url}\n${JSON.stringify(request.body ?? null)}`)
    .digest('hex');
  const lockMs = config.timeouts.requestMs + 60_000;
  const deadline = Date.now() + config.idempotency.waitSeconds * 1000;

  for (;;) {
    const claim = await store.claimIdempotencyKey(
      tenant,
      key,
      fingerprint,
      lockMs,
      config.idempotency.ttlSeconds,
    );
    if (claim.state === 'acquired') break;
    if (claim.state === 'mismatch') {
      context.metrics.idempotencyRequest('conflict');
      throw new ApiError(
        422,
        'This Idempotency-Key was already used with a different request; a key can only be reused with the same method, path and body.',
        { param: 'Idempotency-Key', code: 'idempotency_key_reused' },
      );
    }
    if (claim.state === 'done') {
      context.metrics.idempotencyRequest('hit');
      return replay(context, reply, claim.outcome);
    }
    if (Date.now() > deadline) {
      context.metrics.idempotencyRequest('in_progress');
      throw new ApiError(409, 'A request with this Idempotency-Key is still being processed; retry later.', {
        code: 'idempotency_key_in_use',
      });
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }

  context.metrics.idempotencyRequest('miss');
  let recorded: IdempotentOutcome | undefined;
  try {
    const result = await handle((outcome) => {
      recorded = outcome;
    });
    if (!recorded && result !== reply) recorded = { kind: 'json', status: 200, body: result };
    if (recorded) await store.completeIdempotencyKey(tenant, key, recorded);
    else await store.releaseIdempotencyKey(tenant, key);
    return result;
  } catch (error) {
    const apiError = toApiError(error);
    if (apiError.status < 500) {
      await store.completeIdempotencyKey(tenant, key, {
        kind: 'json',
        status: apiError.status,
        body: apiError.toBody(),
      });
    } else {
      await store.releaseIdempotencyKey(tenant, key);
    }
    throw error;
  }
}

async function replay(
  context: AppContext,
  reply: FastifyReply,
  outcome: IdempotentOutcome,
): Promise<unknown> {
  void reply.header('idempotent-replayed', 'true');
  if (outcome.kind === 'log') {
    await streamEventLog(context, reply, (outcome.body as { response_id: string }).response_id, -1);
    return reply;
  }
  return reply.code(outcome.status).type('application/json').send(outcome.body);
}
