import type { FastifyReply } from 'fastify';
import type { ResponseObject } from '../api/wire.js';
import { followEvents, isTerminalEvent, toStoredEvent } from '../engine/background/event-log.js';
import type { OpenedRun, ResponsePlan } from '../engine/engine.js';
import type { StoredEvent } from '../store/types.js';
import type { AppContext } from './context.js';
import type { RecordOutcome } from './idempotency.js';
import { SseWriter } from './sse.js';

/** How often a follower looks at the database when no event wakes it (a job on another replica). */
const FOLLOW_POLL_MS = 250;

function openSse(context: AppContext, reply: FastifyReply): SseWriter {
  void reply.hijack();
  const sse = new SseWriter(reply.raw, context.config.streamKeepAliveSeconds * 1000);
  sse.start(reply.getHeaders());
  return sse;
}

/**
 * A foreground stream: `response.created`, `response.in_progress`, the items, then exactly one
 * terminal event once the response is stored. A client that leaves aborts the backend and the
 * stored response ends `cancelled`. Resolves with the final response.
 */
export async function streamForeground(
  context: AppContext,
  plan: ResponsePlan,
  opened: OpenedRun,
  reply: FastifyReply,
  signal: AbortSignal,
  record?: RecordOutcome,
): Promise<ResponseObject> {
  const sse = openSse(context, reply);
  // With an Idempotency-Key the events are kept (written once, at the end), so a retry replays them.
  const logged: StoredEvent[] | undefined = record ? [] : undefined;
  const builder = context.engine.createBuilder(plan, {
    sink: logged
      ? (event) => {
          const stored = toStoredEvent(event);
          logged.push(stored);
          sse.frame(stored.type, stored.data);
        }
      : (event) => sse.event(event),
  });
  try {
    builder.created();
    builder.inProgress();
    const response = await context.engine.drive(opened, builder, signal, { afterPart: () => sse.drained() });
    try {
      await context.engine.persist(plan, response);
    } catch (error) {
      context.logger.error({ err: error, responseId: response.id }, 'could not store a streamed response');
      if (response.status !== 'cancelled') {
        builder.fail({
          type: 'server_error',
          code: 'server_error',
          message: 'The response was generated but could not be stored; the database is unavailable.',
          param: null,
        });
      }
    }
    builder.end();
    // A stream whose client left is not a result worth replaying: a retry runs afresh.
    if (logged && record && builder.response.status !== 'cancelled') {
      await context.store.appendEvents(plan.response.id, logged);
      record({ kind: 'log', status: 200, body: { response_id: plan.response.id } });
    }
  } catch (error) {
    context.logger.error({ err: error, responseId: plan.response.id }, 'stream failed');
    if (!builder.isTerminal) {
      builder.fail({
        type: 'server_error',
        code: 'server_error',
        message: 'The gateway failed while streaming.',
        param: null,
      });
      builder.end();
    }
  } finally {
    sse.end();
  }
  return builder.response;
}

/**
 * Streams a background response's event log after `startingAfter`: the stored events first,
 * then live ones until the terminal event. A client that leaves stops only its own stream,
 * never the response.
 */
export async function streamEventLog(
  context: AppContext,
  reply: FastifyReply,
  responseId: string,
  startingAfter: number,
): Promise<void> {
  const sse = openSse(context, reply);
  const controller = new AbortController();
  let ended = false;
  const stop = () => {
    if (!ended) context.metrics.streamDisconnected('background');
    controller.abort();
  };
  reply.raw.once('close', stop);
  context.followers.add(controller);
  try {
    for await (const event of followEvents({
      store: context.store,
      hub: context.hub,
      responseId,
      startingAfter,
      signal: controller.signal,
      pollMs: FOLLOW_POLL_MS,
    })) {
      sse.frame(event.type, event.data);
      if (isTerminalEvent(event.type)) ended = true;
      const wait = sse.drained();
      if (wait) await wait;
    }
  } catch (error) {
    context.logger.error({ err: error, responseId }, 'could not follow a background stream');
  } finally {
    context.followers.delete(controller);
    reply.raw.off('close', stop);
    sse.end();
  }
}
