import type { Logger } from '../../src/observability/logger.js';
import { createLogger } from '../../src/observability/logger.js';
import type { FakeBackend, RecordedRequest, Scenario } from './scenario.js';

/** A tool as tests declare it in a Responses request. */
export const WEATHER_TOOL = {
  type: 'function' as const,
  name: 'get_weather',
  description: 'Current weather for a city',
  parameters: {
    type: 'object',
    properties: { city: { type: 'string' }, unit: { type: ['string', 'null'], enum: ['c', 'f', null] } },
    required: ['city', 'unit'],
    additionalProperties: false,
  },
  strict: true,
};

export const TIME_TOOL = {
  type: 'function' as const,
  name: 'get_time',
  description: 'Current time in a city',
  parameters: {
    type: 'object',
    properties: { city: { type: 'string' } },
    required: ['city'],
    additionalProperties: false,
  },
  strict: true,
};

/** The generation requests a fake received (not its model listings). */
export function chatRequests(fake: FakeBackend): RecordedRequest[] {
  return fake.requests.filter(
    (request) => request.path.endsWith('/api/chat') || request.path.endsWith('/chat/completions'),
  );
}

/** Names of the tools a generation request offered the model (either wire format). */
export function offeredTools(request: RecordedRequest): string[] {
  const tools = (request.body.tools as { function: { name: string } }[] | undefined) ?? [];
  return tools.map((tool) => tool.function.name);
}

/** The messages of a generation request. */
export function messagesOf(request: RecordedRequest): Record<string, unknown>[] {
  return (request.body.messages as Record<string, unknown>[] | undefined) ?? [];
}

/** Whether the request ends with a tool result (the model's call was answered). */
export function endsWithToolResult(request: RecordedRequest): boolean {
  return messagesOf(request).at(-1)?.role === 'tool';
}

/** A model that calls a tool, then answers with `answer` once it has the tool's result. */
export function callThenAnswer(call: Scenario, answer: string): (request: RecordedRequest) => Scenario {
  return (request) => (endsWithToolResult(request) ? { steps: [{ type: 'text', text: answer }] } : call);
}

/** A logger whose lines tests can read. */
export function capturingLogger(): { logger: Logger; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const logger = createLogger('debug', { write: (chunk: string) => void chunks.push(chunk) });
  return {
    logger,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

/** The bodies of the `POST /v1/responses` requests a running Ferry received, oldest first. */
export function responsesBodies(ferry: { received: { method: string; url: string; body: unknown }[] }) {
  return ferry.received
    .filter((request) => request.method === 'POST' && request.url.split('?')[0] === '/v1/responses')
    .map((request) => request.body as Record<string, unknown>);
}
