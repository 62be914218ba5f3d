import type { BackendConfig, FerryConfig } from '../config/schema.js';
import { OllamaBackend } from './ollama/driver.js';
import { OpenAIChatBackend } from './openai-chat/driver.js';
import type { Backend } from './types.js';

/** Builds the driver a backend's configuration names, with its own connection pool. */
export function createBackend(backend: BackendConfig, config: FerryConfig): Backend {
  const options = {
    connections: backend.connections,
    timeouts: { ...config.timeouts, ...backend.timeouts },
  };
  switch (backend.kind) {
    case 'ollama':
      return new OllamaBackend(backend.name, backend.url, options);
    case 'openai-chat':
      return new OpenAIChatBackend(backend.name, backend.url, { ...options, apiKey: backend.apiKey });
  }
}
