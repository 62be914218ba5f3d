import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { CreateResponseRequest, IncludeValue } from '../../api/create-response.js';
import { ApiError, invalidRequest, responseNotFound } from '../../api/errors.js';
import { integer, parseOrThrow } from '../../api/validation.js';
import { isFinished, type ResponseObject, type StreamEvent } from '../../api/wire.js';
import { toStoredEvent } from '../../engine/background/event-log.js';
import { QUEUED_EVENTS } from '../../engine/background/worker.js';
import type { JobPayload, ResponsePlan } from '../../engine/engine.js';
import { ResponseBuilder } from '../../engine/response-builder.js';
import type { StoredEvent } from '../../store/types.js';
import type { AppContext } from '../context.js';
import { idempotent, type RecordOutcome } from '../idempotency.js';
import { streamEventLog, streamForeground } from '../streams.js';
import { queryArray } from './query.js';

const IdParams = z.object({ id: z.string() });

const InputItemsQuery = z.object({
  after: z.string().min(1).optional(),
  limit: z.coerce
    .number()
    .pipe(integer({ min: 1, max: 100 }))
    .default(20),
  order: z.enum(['asc', 'desc']).default('desc'),
  include: z.array(IncludeValue).optional(),
});

const RetrieveQuery = z.object({
  stream: z.enum(['true', 'false']).optional(),
  starting_after: z.coerce
    .number()
    .pipe(integer({ min: -1 }))
    .optional(),
  include: z.array(IncludeValue).optional(),
  include_obfuscation: z.enum(['true', 'false']).optional(),
});

/** How long a cancel waits for a running job's worker to write the cancelled response. */
const CANCEL_WAIT_MS = 5_000;

/** `/v1/responses`: create (blocking, streamed or background), retrieve (or resume), delete, input items, cancel. */
export function registerResponseRoutes(app: FastifyInstance, context: AppContext): void {
  const { store } = context;

  app.post('/v1/responses', async (request, reply) => {
    const body = parseOrThrow(CreateResponseRequest, request.body ?? {});
    return idempotent(context, request, reply, (record) =>
      createResponse(context, request, body, reply, record),
    );
  });

  // Codex (with `supports_websockets`) first asks to upgrade this path to the Responses WebSocket
  // mode. Ferry speaks HTTP + SSE only: answering at once lets the client fall back without delay.
  app.get('/v1/responses', async (request, reply) => {
    if (request.headers.upgrade?.toLowerCase() !== 'websocket') return reply.callNotFound();
    const error = new ApiError(
      426,
      'The Responses WebSocket mode is not available on this gateway; send POST /v1/responses (HTTP with server-sent events) instead.',
      { code: 'websocket_not_supported' },
    );
    return reply.code(426).header('connection', 'close').send(error.toBody());
  });

  app.get('/v1/responses/:id', async (request, reply) => {
    const { id } = IdParams.parse(request.params);
    const query = parseOrThrow(RetrieveQuery, {
      ...(request.query as object),
      include: queryArray(request.query, 'include'),
    });
    const response = await store.getResponse(request.tenant, id);
    if (!response) throw responseNotFound(id);
    if (query.stream !== 'true') return response;
    if (!response.background || !(await store.hasEvents(id))) {
      throw invalidRequest(
        `Response '${id}' was not created with background=true and stream=true, so it has no event stream to resume.`,
        'stream',
      );
    }
    await streamEventLog(context, reply, id, query.starting_after ?? -1);
    return reply;
  });

  app.delete('/v1/responses/:id', async (request) => {
    const { id } = IdParams.parse(request.params);
    if (!(await store.deleteResponse(request.tenant, id))) throw responseNotFound(id);
    context.changes.publish({ kind: 'cancel', responseId: id });
    return { id, object: 'response', deleted: true };
  });

  app.get('/v1/responses/:id/input_items', async (request) => {
    const { id } = IdParams.parse(request.params);
    const query = parseOrThrow(InputItemsQuery, {
      ...(request.query as object),
      include: queryArray(request.query, 'include'),
    });
    const page = await store.listInputItems(request.tenant, id, query);
    if (!page) throw responseNotFound(id);
    const data = page.data.map((item) => item.body);
    return {
      object: 'list',
      data,
      first_id: page.data[0]?.id ?? null,
      last_id: page.data.at(-1)?.id ?? null,
      has_more: page.hasMore,
    };
  });

  app.post('/v1/responses/:id/cancel', async (request) => {
    const { id } = IdParams.parse(request.params);
    const outcome = await store.requestCancel(request.tenant, id, cancelQueued);
    switch (outcome.state) {
      case 'not_found':
        throw responseNotFound(id);
      case 'not_background':
        throw invalidRequest('Only responses created with background=true can be cancelled.', null);
      case 'terminal':
        return outcome.response;
      case 'cancelled':
        context.changes.publish({ kind: 'events', responseId: id });
        return outcome.response;
      case 'requested':
        context.changes.publish({ kind: 'cancel', responseId: id });
        return waitUntilSettled(context, request.tenant, id);
    }
  });
}

/** `POST /v1/responses`: blocking, streamed, or in the background. */
async function createResponse(
  context: AppContext,
  request: FastifyRequest,
  body: CreateResponseRequest,
  reply: FastifyReply,
  record: RecordOutcome | undefined,
): Promise<unknown> {
  const { engine } = context;
  const plan = await engine.plan(request.tenant, body, request.observation);
  if (body.background) return startBackground(context, plan, reply, record);

  const abort = abortWhenClientLeaves(reply);
  const opened = await engine.open(plan, abort.signal);
  if (body.stream) {
    await streamForeground(context, plan, opened, reply, abort.signal, record);
    return reply;
  }
  const builder = engine.createBuilder(plan);
  const response = await engine.drive(opened, builder, abort.signal);
  if (response.status === 'failed') {
    // Nothing reached the client yet, so a backend failure is still an HTTP error.
    const status = response.error?.code === 'backend_timeout' ? 504 : 502;
    throw new ApiError(status, response.error?.message ?? 'The backend failed.', {
      type: 'server_error',
      code:
        response.error?.code === 'server_error' ? 'backend_error' : (response.error?.code ?? 'backend_error'),
    });
  }
  // Serialised once: the same text is stored and sent.
  const json = JSON.stringify(response);
  await persistOrThrow(context, plan, response, json);
  record?.({ kind: 'json', status: 200, body: response });
  return reply.type('application/json').send(json);
}

/**
 * A background response: saved as `queued` with its job, answered at once — as the queued
 * response, or (with `stream`) as its event stream, followed live from the log.
 */
async function startBackground(
  context: AppContext,
  plan: ResponsePlan,
  reply: FastifyReply,
  record: RecordOutcome | undefined,
): Promise<unknown> {
  const response = plan.response;
  const events: StoredEvent[] = [];
  if (plan.request.stream) {
    const builder = new ResponseBuilder(response, { sink: (event) => events.push(toStoredEvent(event)) });
    builder.created();
    builder.queued();
  }
  const job = context.engine.toJob(plan);
  await context.store.enqueueBackground(
    {
      tenant: plan.tenant,
      response,
      ancestors: plan.ancestors,
      inputItems: plan.inputItems,
      expiresAt: Math.floor(Date.now() / 1000) + context.config.retentionSeconds,
    },
    { backend: job.backend, payload: JSON.stringify(job.payload), events },
  );
  context.changes.publish({ kind: 'job' });
  context.metrics.backgroundJobs.enqueued(response.model);
  if (!plan.request.stream) return response;
  // The job runs whatever happens to this connection; a retry follows the same log.
  record?.({ kind: 'log', status: 200, body: { response_id: response.id } });
  await streamEventLog(context, reply, response.id, -1);
  return reply;
}

/** What a queued job becomes when cancelled before it started: no output, and the end of its stream. */
function cancelQueued(
  response: ResponseObject,
  payload: string,
): { response: ResponseObject; events: StoredEvent[] } {
  const builder = new ResponseBuilder(response, { startSequence: QUEUED_EVENTS });
  builder.cancel();
  const streams = (JSON.parse(payload) as JobPayload).stream;
  const terminal: StreamEvent | undefined = streams ? builder.terminalEvent() : undefined;
  return { response: builder.response, events: terminal ? [toStoredEvent(terminal)] : [] };
}

/** Waits (bounded) for a running job's worker to write the cancelled response. */
async function waitUntilSettled(context: AppContext, tenant: string, id: string): Promise<ResponseObject> {
  const deadline = Date.now() + CANCEL_WAIT_MS;
  for (;;) {
    const response = await context.store.getResponse(tenant, id);
    if (!response) throw responseNotFound(id);
    if (isFinished(response.status) || Date.now() > deadline) return response;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Aborts the backend request when the client goes away before its answer was sent. */
function abortWhenClientLeaves(reply: FastifyReply): AbortController {
  const controller = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort(new Error('The client closed the connection.'));
  });
  return controller;
}

async function persistOrThrow(
  context: AppContext,
  plan: ResponsePlan,
  response: ResponseObject,
  json?: string,
): Promise<void> {
  try {
    await context.engine.persist(plan, response, json);
  } catch (error) {
    context.logger.error({ err: error, responseId: response.id }, 'could not store a response');
    throw new ApiError(
      503,
      'The response was generated but could not be stored; the database is unavailable.',
      {
        type: 'server_error',
        code: 'store_unavailable',
      },
    );
  }
}
