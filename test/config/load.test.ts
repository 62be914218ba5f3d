import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseBackendSpec } from '../../src/config/load.js';

describe('configuration', () => {
  it('defaults to loopback:8080, SQLite under ./data and one local Ollama', () => {
    const config = loadConfig({}, {});
    expect(config).toMatchObject({
      host: '127.0.0.1',
      port: 8080,
      database: './data/ferry.db',
      defaultContextWindow: 8192,
    });
    expect(config.backends).toEqual([
      expect.objectContaining({ name: 'ollama', kind: 'ollama', url: 'http://127.0.0.1:11434' }),
    ]);
  });

  it('parses NAME=KIND:URL backends', () => {
    expect(parseBackendSpec('gpu=openai-chat:http://10.0.0.5:8000/v1')).toEqual({
      name: 'gpu',
      kind: 'openai-chat',
      url: 'http://10.0.0.5:8000/v1',
    });
    expect(() => parseBackendSpec('just-a-url')).toThrow(ConfigError);
  });

  it('layers file < environment < flags', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-config-'));
    const file = join(dir, 'ferry.json');
    writeFileSync(
      file,
      JSON.stringify({
        port: 9000,
        host: '0.0.0.0',
        backends: [{ name: 'a', kind: 'ollama', url: 'http://127.0.0.1:1' }],
        models: { m: { contextWindow: 4096, backends: ['a'] } },
        apiKeys: { 'sk-12345678': 'team' },
      }),
    );
    const config = loadConfig(
      { config: file, port: '9100' },
      {
        FERRY_PORT: '9050',
        FERRY_DATABASE: 'postgres://x@127.0.0.1/db',
        FERRY_BACKENDS: 'b=openai-chat:http://127.0.0.1:2/v1',
      },
    );
    expect(config.port).toBe(9100);
    expect(config.host).toBe('0.0.0.0');
    expect(config.database).toBe('postgres://x@127.0.0.1/db');
    expect(config.backends.map((backend) => backend.name)).toEqual(['a', 'b']);
    expect(config.models.m!.contextWindow).toBe(4096);
    expect(config.apiKeys).toEqual({ 'sk-12345678': 'team' });
  });

  it('explains what is wrong', () => {
    expect(() => loadConfig({ port: 'eighty' }, {})).toThrow(/--port must be an integer/);
    expect(() => loadConfig({ backend: ['x=carrier-pigeon:http://127.0.0.1:1'] }, {})).toThrow(
      /backends\[0\]\.kind/,
    );
    expect(() => loadConfig({ backend: ['x=ollama:http://a:1', 'x=ollama:http://b:1'] }, {})).toThrow(
      /configured twice/,
    );
    expect(() => loadConfig({ config: '/nonexistent/ferry.json' }, {})).toThrow(/Cannot read config file/);
    const dir = mkdtempSync(join(tmpdir(), 'ferry-config-'));
    writeFileSync(join(dir, 'bad.json'), JSON.stringify({ models: { m: { backends: ['nope'] } } }));
    expect(() => loadConfig({ config: join(dir, 'bad.json') }, {})).toThrow(/unknown backend 'nope'/);
  });

  it('takes the reasoning key from the environment only, and model reasoning levels from the file', () => {
    const key = Buffer.alloc(32, 5).toString('base64');
    const dir = mkdtempSync(join(tmpdir(), 'ferry-config-'));
    const file = join(dir, 'ferry.json');
    writeFileSync(
      file,
      JSON.stringify({
        previousReasoningKeys: ['ab'.repeat(32)],
        models: {
          'gpt-oss': { reasoning: { efforts: ['low', 'high'] } },
          qwen: { reasoning: { efforts: { none: false } } },
        },
      }),
    );
    const config = loadConfig({ config: file }, { FERRY_REASONING_KEY: key });
    expect(config.reasoningKey).toBe(key);
    expect(config.previousReasoningKeys).toEqual(['ab'.repeat(32)]);
    expect(config.models['gpt-oss']!.reasoning).toEqual({ efforts: ['low', 'high'] });
    expect(config.models.qwen!.reasoning).toEqual({ efforts: { none: false } });
    expect(loadConfig({}, {}).reasoningKey).toBeUndefined();
    expect(() => loadConfig({}, { FERRY_REASONING_KEY: 'too-short' })).toThrow(/reasoningKey.*32 bytes/);
    writeFileSync(file, JSON.stringify({ models: { m: { reasoning: { efforts: ['extreme'] } } } }));
    expect(() => loadConfig({ config: file }, {})).toThrow(/models\.m\.reasoning\.efforts/);
  });
});
