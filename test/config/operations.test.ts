import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';

describe('operations settings', () => {
  it('defaults: no rate limits, 16 KiB headers, 8 KiB URLs, metrics on, tracing off', () => {
    const config = loadConfig({}, {});
    expect(config.rateLimits).toEqual({ perKey: {}, perTenant: {}, tenants: {}, syncIntervalMs: 1_000 });
    expect(config.limits).toMatchObject({ headerBytes: 16_384, urlBytes: 8_192 });
    expect(config.metrics).toEqual({ enabled: true });
    expect(config.tracing).toEqual({
      enabled: false,
      endpoint: 'http://127.0.0.1:4318/v1/traces',
      headers: {},
      sampleRatio: 1,
      serviceName: 'ferry',
    });
    expect(config.keyCacheSeconds).toBe(10);
  });

  it('takes limits, timeouts and the OTLP endpoint from flags and the environment over the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-config-ops-'));
    const file = join(dir, 'ferry.json');
    writeFileSync(
      file,
      JSON.stringify({
        rateLimits: {
          perKey: { requestsPerMinute: 10, concurrentRequests: 2 },
          tenants: { big: { requestsPerMinute: 500 } },
        },
        timeouts: { connectMs: 1_000 },
        tracing: { headers: { 'x-token': 't' } },
        apiKeys: { 'sk-12345678': { tenant: 'team', name: 'ci', requestsPerMinute: 3 } },
      }),
    );
    const config = loadConfig(
      { config: file, keyRpm: '20', idleTimeoutMs: '5000' },
      {
        FERRY_KEY_RPM: '15',
        FERRY_TENANT_CONCURRENCY: '40',
        FERRY_FIRST_BYTE_TIMEOUT_MS: '90000',
        FERRY_OTLP_ENDPOINT: 'http://collector:4318/v1/traces',
      },
    );
    expect(config.rateLimits.perKey).toEqual({ requestsPerMinute: 20, concurrentRequests: 2 });
    expect(config.rateLimits.perTenant).toEqual({ concurrentRequests: 40 });
    expect(config.rateLimits.tenants).toEqual({ big: { requestsPerMinute: 500 } });
    expect(config.timeouts).toEqual({
      connectMs: 1_000,
      firstByteMs: 90_000,
      idleMs: 5_000,
      requestMs: 600_000,
    });
    expect(config.tracing).toMatchObject({
      enabled: true,
      endpoint: 'http://collector:4318/v1/traces',
      headers: { 'x-token': 't' },
    });
    expect(config.apiKeys).toEqual({ 'sk-12345678': { tenant: 'team', name: 'ci', requestsPerMinute: 3 } });
  });

  it('refuses unusable settings with a clear message', () => {
    expect(() => loadConfig({ keyRpm: 'many' }, {})).toThrow(/--key-rpm must be an integer/);
    expect(() => loadConfig({ tenantConcurrency: '0' }, {})).toThrow(
      /rateLimits\.perTenant\.concurrentRequests/,
    );
    const dir = mkdtempSync(join(tmpdir(), 'ferry-config-ops-'));
    const write = (name: string, value: unknown) => {
      writeFileSync(join(dir, name), JSON.stringify(value));
      return join(dir, name);
    };
    expect(() =>
      loadConfig({ config: write('tenant.json', { apiKeys: { 'sk-12345678': 'team a' } }) }, {}),
    ).toThrow(/apiKeys/);
    expect(() =>
      loadConfig(
        {
          config: write('names.json', {
            apiKeys: { 'sk-12345678': { tenant: 'a', name: 'x' }, 'sk-87654321': { tenant: 'b', name: 'x' } },
          }),
        },
        {},
      ),
    ).toThrow(/Two API keys are named 'x'/);
    expect(() => loadConfig({ config: write('ratio.json', { tracing: { sampleRatio: 2 } }) }, {})).toThrow(
      /tracing\.sampleRatio/,
    );
    expect(() => loadConfig({ config: write('headers.json', { limits: { headerBytes: 10 } }) }, {})).toThrow(
      /limits\.headerBytes/,
    );
  });
});
