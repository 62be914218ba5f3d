import { parseArgs } from 'node:util';
import { createApp } from '../app.js';
import {
  ConfigError,
  DEFAULT_BACKEND,
  ENV,
  loadConfig,
  SECRET_ENV,
  type ConfigOverrides,
} from '../config/load.js';
import { openStore } from '../store/open.js';
import { runKeysCommand } from './keys.js';

const HELP = `ferry — an OpenAI Responses API gateway for self-hosted LLM backends

Usage: ferry <command> [options]

Commands:
  serve      Run the gateway (default)
  migrate    Apply database migrations and exit
  keys       Manage API keys stored in the database:
               keys create --tenant NAME [--name LABEL] [--rpm N] [--concurrency N]
                 prints the new key once (stdout); only its hash is kept
               keys list [--tenant NAME] [--json]
               keys revoke KEY_ID
  help       Show this help

Options (each also settable by environment variable):
  --config PATH                  JSON config file                        ${ENV.config}
  --host HOST                    Listen address (default 127.0.0.1)      ${ENV.host}
  --port PORT                    Listen port (default 8080)              ${ENV.port}
  --database PATH|URL            SQLite file (default ./data/ferry.db)   ${ENV.database}
                                                                  or postgres://user@host/db
  --database-pool-size N         PostgreSQL connections (default 10)     ${ENV.databasePoolSize}
  --backend NAME=KIND:URL        A backend; repeatable (comma-separated  ${ENV.backend}
                                 in the variable). KIND: ollama | openai-chat
                                 Default: ${DEFAULT_BACKEND}
  --default-context-window N     Context window for unconfigured models  ${ENV.defaultContextWindow}
                                 (default 8192 tokens)
  --log-level LEVEL              fatal|error|warn|info|debug|trace|silent ${ENV.logLevel}
  --otlp-endpoint URL            Turn tracing on, exporting OTLP/HTTP    ${ENV.otlpEndpoint}
                                 e.g. http://127.0.0.1:4318/v1/traces
  --key-rpm N                    Requests per minute per API key         ${ENV.keyRpm}
  --key-concurrency N            Concurrent requests per API key         ${ENV.keyConcurrency}
  --tenant-rpm N                 Requests per minute per tenant          ${ENV.tenantRpm}
  --tenant-concurrency N         Concurrent requests per tenant          ${ENV.tenantConcurrency}
  --connect-timeout-ms N         Backend TCP connect (default 5000)      ${ENV.connectTimeoutMs}
  --first-byte-timeout-ms N      Backend first byte of a stream          ${ENV.firstByteTimeoutMs}
                                 (default 300000)
  --idle-timeout-ms N            Silence inside a backend stream         ${ENV.idleTimeoutMs}
                                 (default 120000)
  --request-timeout-ms N         A whole blocking generation             ${ENV.requestTimeoutMs}
                                 (default 600000)

Environment only:
  ${SECRET_ENV.reasoningKey}            Key sealing reasoning encrypted_content (32 bytes,
                                 base64 or hex). Default: generated once, kept in the database
`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      host: { type: 'string' },
      port: { type: 'string' },
      database: { type: 'string' },
      'database-pool-size': { type: 'string' },
      backend: { type: 'string', multiple: true },
      'default-context-window': { type: 'string' },
      'log-level': { type: 'string' },
      'otlp-endpoint': { type: 'string' },
      'key-rpm': { type: 'string' },
      'key-concurrency': { type: 'string' },
      'tenant-rpm': { type: 'string' },
      'tenant-concurrency': { type: 'string' },
      'connect-timeout-ms': { type: 'string' },
      'first-byte-timeout-ms': { type: 'string' },
      'idle-timeout-ms': { type: 'string' },
      'request-timeout-ms': { type: 'string' },
      // `ferry keys`
      tenant: { type: 'string' },
      name: { type: 'string' },
      rpm: { type: 'string' },
      concurrency: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const command = positionals[0] ?? 'serve';
  if (values.help || command === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  const overrides: ConfigOverrides = {
    config: values.config,
    host: values.host,
    port: values.port,
    database: values.database,
    databasePoolSize: values['database-pool-size'],
    backend: values.backend,
    logLevel: values['log-level'],
    defaultContextWindow: values['default-context-window'],
    otlpEndpoint: values['otlp-endpoint'],
    keyRpm: values['key-rpm'],
    keyConcurrency: values['key-concurrency'],
    tenantRpm: values['tenant-rpm'],
    tenantConcurrency: values['tenant-concurrency'],
    connectTimeoutMs: values['connect-timeout-ms'],
    firstByteTimeoutMs: values['first-byte-timeout-ms'],
    idleTimeoutMs: values['idle-timeout-ms'],
    requestTimeoutMs: values['request-timeout-ms'],
  };
  const config = loadConfig(overrides);

  switch (command) {
    case 'serve':
      return serve(config);
    case 'migrate': {
      const store = await openStore({ database: config.database });
      await store.close();
      process.stdout.write(`Migrations applied to ${config.database}\n`);
      return 0;
    }
    case 'keys':
      return runKeysCommand(config, positionals.slice(1), values);
    default:
      process.stderr.write(`Unknown command '${command}'.\n\n${HELP}`);
      return 2;
  }
}

async function serve(config: ReturnType<typeof loadConfig>): Promise<number> {
  const app = await createApp(config);
  const { logger } = app.context;
  const url = await app.listen();
  logger.info(
    {
      url,
      database: withoutCredentials(config.database),
      backends: config.backends.map((b) => `${b.name}=${b.kind}:${withoutCredentials(b.url)}`),
      tracing: config.tracing.enabled ? withoutCredentials(config.tracing.endpoint) : false,
      rateLimitsShared: app.context.rateLimiter.shared,
    },
    `Ferry is listening on ${url}/v1`,
  );
  if (app.context.keys.open && !isLoopback(config.host)) {
    logger.warn(
      `No API keys are configured and Ferry listens on ${config.host}, beyond this machine: anyone who can reach it can use it, and everything they store is shared. Configure apiKeys or run \`ferry keys create\`.`,
    );
  }
  return new Promise((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'shutting down');
      app.close().then(
        () => resolve(0),
        (error: unknown) => {
          logger.error({ err: error }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

/** A URL with its user:password part masked, for logs. */
function withoutCredentials(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof ConfigError || (error instanceof TypeError && 'code' in error)) {
      process.stderr.write(`ferry: ${(error as Error).message}\n`);
      process.exit(2);
    }
    process.stderr.write(`ferry: ${(error as Error)?.stack ?? String(error)}\n`);
    process.exit(1);
  },
);
