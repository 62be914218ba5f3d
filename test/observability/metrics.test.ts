import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { classifyQuery } from '../../src/observability/db-metrics.js';
import { Metrics } from '../../src/observability/metrics.js';
import { startFakeOllama } from '../support/fake-ollama.js';
import { postJson, startFerry, type RunningFerry } from '../support/ferry.js';
import { scrape, type Scrape } from '../support/metrics.js';
import type { FakeBackend } from '../support/scenario.js';
import { captureSse } from '../support/sse.js';

/**
 * A scripted workload of every kind of outcome, then one scrape of /metrics: each counter
 * must have moved exactly as the workload says.
 */
describe('Prometheus metrics after a scripted workload', () => {
  let fake: FakeBackend;
  let ferry: RunningFerry;
  let metrics: Scrape;
  const key = 'sk-metrics-team-a-0123';
  const limitedKey = 'sk-metrics-limited-0123';
  const usage = { input: 0, output: 0 };

  beforeAll(async () => {
    fake = await startFakeOllama({ models: ['m'] });
    ferry = await startFerry({
      // `gone` is tried first for model m and cannot be reached: one failover.
      backends: [
        { name: 'gone', kind: 'ollama', url: 'http://127.0.0.1:9' },
        { name: 'local', kind: 'ollama', url: fake.url },
      ],
      models: { m: { backends: ['gone', 'local'] }, other: { backends: ['local'] } },
      apiKeys: { [key]: 'team-a', [limitedKey]: { tenant: 'team-b', requestsPerMinute: 1 } },
    });
    const client = new OpenAI({ baseURL: `${ferry.url}/v1`, apiKey: key, maxRetries: 0 });
    const auth = { authorization: `Bearer ${key}` };
    const count = (response: { usage?: { input_tokens: number; output_tokens: number } | null }) => {
      usage.input += response.usage!.input_tokens;
      usage.output += response.usage!.output_tokens;
    };

    // 1. Two blocking responses (the first one fails over from `gone`), one streamed.
    fake.setHandler(() => ({
      steps: [{ type: 'text', text: 'four words of answer' }],
      usage: { input: 11, output: 4 },
    }));
    count(await client.responses.create({ model: 'm', input: 'one' }));
    count(await client.responses.create({ model: 'm', input: 'two' }));
    const streamed = await captureSse(
      await postJson(ferry, '/v1/responses', { model: 'm', input: 'three', stream: true }, auth),
    );
    count(
      (
        streamed.frames.at(-1)!.data as {
          response: { usage: { input_tokens: number; output_tokens: number } };
        }
      ).response,
    );

    // 2. A stream the backend breaks mid-way.
    fake.enqueue({
      steps: [
        { type: 'text', text: 'partial' },
        { type: 'error', message: 'GPU fell off' },
      ],
    });
    await captureSse(
      await postJson(ferry, '/v1/responses', { model: 'm', input: 'four', stream: true }, auth),
    );

    // 3. A stream whose client leaves.
    fake.enqueue({
      steps: [
        { type: 'text', text: 'hello' },
        { type: 'wait', ms: 10_000 },
        { type: 'text', text: 'bye' },
      ],
    });
    const leaving = await postJson(ferry, '/v1/responses', { model: 'm', input: 'five', stream: true }, auth);
    const reader = leaving.body!.getReader();
    await reader.read();
    await reader.cancel();
    await fake.waitForAbort();

    // 4. An invalid body; a model the backend does not have; a random model name, which only the
    //    unreachable backend might serve (it must not become a label).
    expect((await postJson(ferry, '/v1/responses', { model: 'm' }, auth)).status).toBe(400);
    fake.enqueue({ steps: [], status: 404, errorBody: { error: "model 'other' not found" } });
    expect((await postJson(ferry, '/v1/responses', { model: 'other', input: 'x' }, auth)).status).toBe(404);
    const random = await postJson(ferry, '/v1/responses', { model: 'random-model-7f3a', input: 'x' }, auth);
    expect(random.status).toBe(503);

    // 5. Access: no key, a wrong key, a rate-limited key.
    expect((await postJson(ferry, '/v1/responses', { model: 'm', input: 'x' })).status).toBe(401);
    expect(
      (await ferry.fetch('/v1/models', { headers: { authorization: 'Bearer sk-wrong-0123' } })).status,
    ).toBe(401);
    expect(
      (await ferry.fetch('/v1/models', { headers: { authorization: `Bearer ${limitedKey}` } })).status,
    ).toBe(200);
    expect(
      (await ferry.fetch('/v1/models', { headers: { authorization: `Bearer ${limitedKey}` } })).status,
    ).toBe(429);

    // 6. A readiness probe lists every backend's models.
    await ferry.fetch('/readyz');

    // The cancelled stream is stored after its client left; wait (bounded) until it is counted.
    await vi.waitFor(
      async () => {
        metrics = await scrape(() => ferry.fetch('/metrics'));
        expect(
          metrics.value('ferry_responses_total', { model: 'm', mode: 'stream', status: 'cancelled' }),
        ).toBe(1);
        expect(metrics.value('ferry_http_requests_in_flight')).toBe(1); // the scrape itself
      },
      { timeout: 5_000, interval: 50 },
    );
  });
  afterAll(async () => {
    await ferry?.close();
    await fake?.close();
  });

  it('counts HTTP requests by route pattern and status, with latency and in-flight', () => {
    const post = { method: 'POST', route: '/v1/responses' };
    expect(metrics.value('ferry_http_requests_total', { ...post, status: '200' })).toBe(5);
    expect(metrics.value('ferry_http_requests_total', { ...post, status: '400' })).toBe(1);
    expect(metrics.value('ferry_http_requests_total', { ...post, status: '404' })).toBe(1);
    expect(metrics.value('ferry_http_requests_total', { ...post, status: '503' })).toBe(1);
    expect(metrics.value('ferry_http_requests_total', { ...post, status: '401' })).toBe(1);
    expect(
      metrics.value('ferry_http_requests_total', { method: 'GET', route: '/v1/models', status: '429' }),
    ).toBe(1);
    expect(metrics.value('ferry_http_request_duration_seconds_count', { ...post, status_class: '2xx' })).toBe(
      5,
    );
    // Routes are patterns: no id, no raw URL ever becomes a label.
    expect(metrics.text).not.toMatch(/route="[^"]*resp_/);
  });

  it('counts responses by model, mode and final status, and errors by code', () => {
    const m = (mode: string, status: string) =>
      metrics.value('ferry_responses_total', { model: 'm', mode, status });
    expect(m('blocking', 'completed')).toBe(2);
    expect(m('stream', 'completed')).toBe(1);
    expect(m('stream', 'failed')).toBe(1);
    expect(m('stream', 'cancelled')).toBe(1);
    expect(
      metrics.value('ferry_response_errors_total', { model: 'm', mode: 'stream', code: 'server_error' }),
    ).toBe(1);
    // A model the backend does not have is a client-caused refusal ("rejected")…
    expect(
      metrics.value('ferry_responses_total', { model: 'other', mode: 'blocking', status: 'rejected' }),
    ).toBe(1);
    expect(
      metrics.value('ferry_response_errors_total', {
        model: 'other',
        mode: 'blocking',
        code: 'model_not_found',
      }),
    ).toBe(1);
    // …an unreachable backend a failure, and a model name never served is not a label.
    expect(
      metrics.value('ferry_responses_total', { model: '(unknown)', mode: 'blocking', status: 'failed' }),
    ).toBe(1);
    expect(
      metrics.value('ferry_response_errors_total', {
        model: '(unknown)',
        mode: 'blocking',
        code: 'backend_unavailable',
      }),
    ).toBe(1);
    expect(metrics.text).not.toContain('random-model-7f3a');
    expect(metrics.value('ferry_response_duration_seconds_count', { model: 'm', mode: 'blocking' })).toBe(2);
    expect(metrics.value('ferry_responses_active', { mode: 'stream' })).toBe(0);
    expect(metrics.value('ferry_stream_disconnects_total', { mode: 'stream' })).toBe(1);
  });

  it('counts tokens by model and tenant, and times first tokens and token gaps of streams', () => {
    // Completed responses report the backend's usage; the failed and cancelled ones add theirs too.
    expect(metrics.value('ferry_input_tokens_total', { model: 'm' })).toBeGreaterThanOrEqual(usage.input);
    expect(metrics.value('ferry_output_tokens_total', { model: 'm' })).toBeGreaterThanOrEqual(usage.output);
    expect(metrics.value('ferry_tenant_tokens_total', { tenant: 'team-a', type: 'input' })).toBe(
      metrics.value('ferry_input_tokens_total', { model: 'm' }),
    );
    // Three streams produced text: completed, failed and cancelled.
    expect(metrics.value('ferry_time_to_first_token_seconds_count', { model: 'm' })).toBe(3);
    expect(metrics.value('ferry_time_per_output_token_seconds_count', { model: 'm' })).toBeGreaterThanOrEqual(
      1,
    );
    expect(metrics.value('ferry_inter_token_gap_max_seconds_count', { model: 'm' })).toBeGreaterThanOrEqual(
      1,
    );
  });

  it('counts backend calls by backend, model, operation and outcome, with latency and health', () => {
    const call = (backend: string, operation: string, outcome: string) =>
      metrics.value('ferry_backend_requests_total', { backend, model: 'm', operation, outcome });
    expect(call('gone', 'chat', 'unavailable')).toBe(1);
    expect(call('local', 'chat', 'ok')).toBe(2);
    expect(call('local', 'chat_stream', 'ok')).toBe(1);
    expect(call('local', 'chat_stream', 'upstream_error')).toBe(1);
    expect(call('local', 'chat_stream', 'cancelled')).toBe(1);
    expect(
      metrics.value('ferry_backend_requests_total', {
        backend: 'local',
        model: 'other',
        operation: 'chat',
        outcome: 'model_not_found',
      }),
    ).toBe(1);
    expect(
      metrics.value('ferry_backend_requests_total', {
        backend: 'gone',
        model: '(unknown)',
        operation: 'chat',
        outcome: 'unavailable',
      }),
    ).toBe(1);
    expect(
      metrics.value('ferry_backend_request_duration_seconds_count', {
        backend: 'local',
        model: 'm',
        operation: 'chat',
        outcome: 'ok',
      }),
    ).toBe(2);
    expect(
      metrics.sum('ferry_backend_requests_total', {
        backend: 'local',
        operation: 'list_models',
        outcome: 'ok',
      }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      metrics.sum('ferry_backend_requests_total', {
        backend: 'gone',
        operation: 'list_models',
        outcome: 'unavailable',
      }),
    ).toBeGreaterThanOrEqual(1);
    expect(metrics.value('ferry_backend_up', { backend: 'local' })).toBe(1);
    expect(metrics.value('ferry_backend_up', { backend: 'gone' })).toBe(0);
  });

  it('counts refused keys and rate-limited requests', () => {
    expect(metrics.value('ferry_auth_failures_total', { reason: 'missing' })).toBe(1);
    expect(metrics.value('ferry_auth_failures_total', { reason: 'invalid' })).toBe(1);
    expect(
      metrics.value('ferry_rate_limit_rejections_total', {
        scope: 'key',
        limit: 'requests_per_minute',
        tenant: 'team-b',
      }),
    ).toBe(1);
  });

  it('times database queries by operation and table', () => {
    // Five responses were stored: completed, failed and cancelled ones alike.
    expect(
      metrics.value('ferry_db_query_duration_seconds_count', { operation: 'insert', table: 'responses' }),
    ).toBe(5);
    expect(metrics.sum('ferry_db_query_duration_seconds_count', { operation: 'select' })).toBeGreaterThan(0);
    expect(metrics.sum('ferry_db_query_errors_total')).toBe(0);
  });

  it('exports build info and process metrics', () => {
    expect(metrics.sum('ferry_build_info')).toBe(1);
    expect(metrics.families()).toContain('process_cpu_user_seconds_total');
    expect(metrics.families()).toContain('nodejs_eventloop_lag_seconds');
  });
});

describe('metrics building blocks', () => {
  it('classifies SQL statements into bounded operation and table labels', () => {
    expect(classifyQuery('select "body" from "responses" where "id" = ?')).toEqual({
      operation: 'select',
      table: 'responses',
    });
    expect(classifyQuery('insert into "items" ("a") values (?)')).toEqual({
      operation: 'insert',
      table: 'items',
    });
    expect(classifyQuery('update "responses" set "status" = $1')).toEqual({
      operation: 'update',
      table: 'responses',
    });
    expect(classifyQuery('delete from "rate_limit_usage" where "updated_at" < $1')).toEqual({
      operation: 'delete',
      table: 'rate_limit_usage',
    });
    expect(classifyQuery('select 1')).toEqual({ operation: 'select', table: 'none' });
    expect(classifyQuery('begin')).toEqual({ operation: 'other', table: 'none' });
  });

  it('counts a failed query as a database error', async () => {
    const metrics = new Metrics({ processMetrics: false });
    const { databaseQueryObserver } = await import('../../src/observability/db-metrics.js');
    const observe = databaseQueryObserver(metrics);
    observe('select "body" from "responses"', 3, true);
    const errors = await metrics.registry.getSingleMetric('ferry_db_query_errors_total')!.get();
    expect(errors.values).toEqual([{ labels: { operation: 'select', table: 'responses' }, value: 1 }]);
  });

  it('caps model labels: configured and served models only, then (other)', () => {
    const metrics = new Metrics({ configuredModels: ['configured'], processMetrics: false });
    expect(metrics.modelLabel('configured')).toBe('configured');
    expect(metrics.modelLabel('never-served')).toBe('(unknown)');
    expect(metrics.modelLabel('served', true)).toBe('served');
    expect(metrics.modelLabel('served')).toBe('served');
    for (let i = 0; i < 300; i++) metrics.modelLabel(`model-${i}`, true);
    expect(metrics.modelLabel('one-too-many', true)).toBe('(other)');
  });

  it('gives the job worker and the idempotency layer their own metrics', async () => {
    const metrics = new Metrics({ processMetrics: false });
    metrics.backgroundJobs.enqueued('m');
    metrics.backgroundJobs.started(2.5);
    metrics.backgroundJobs.finished('m', 'completed');
    metrics.backgroundJobs.retried('lease_expired');
    metrics.backgroundJobs.expired(2);
    metrics.backgroundJobs.watchQueueDepth(async () => 7);
    metrics.idempotencyRequest('hit');
    const text = await metrics.expose();
    const scraped = new (await import('../support/metrics.js')).Scrape(text);
    expect(scraped.value('ferry_background_jobs_queued')).toBe(7);
    expect(scraped.value('ferry_background_jobs_running')).toBe(0);
    expect(scraped.value('ferry_background_jobs_finished_total', { model: 'm', status: 'completed' })).toBe(
      1,
    );
    expect(scraped.value('ferry_background_jobs_retried_total', { reason: 'lease_expired' })).toBe(1);
    expect(scraped.value('ferry_background_jobs_expired_total')).toBe(2);
    expect(scraped.value('ferry_background_job_queue_wait_seconds_count')).toBe(1);
    expect(scraped.value('ferry_idempotency_requests_total', { outcome: 'hit' })).toBe(1);
  });
});
