import { BackendError } from '../backends/errors.js';
import type { Backend, BackendModel, BackendRequest } from '../backends/types.js';
import type { Metrics } from './metrics.js';

/**
 * A backend whose model listings (the router's catalog refreshes and `/readyz` probes) are
 * counted in the backend metrics. Generation calls are observed by the engine's RunObserver,
 * which knows the model, the mode and the request's trace; they pass straight through here.
 */
class ObservedBackend implements Backend {
  constructor(
    private readonly inner: Backend,
    private readonly metrics: Metrics,
  ) {}

  get name() {
    return this.inner.name;
  }

  get kind() {
    return this.inner.kind;
  }

  get url() {
    return this.inner.url;
  }

  chat(request: BackendRequest, signal: AbortSignal) {
    return this.inner.chat(request, signal);
  }

  async listModels(signal?: AbortSignal): Promise<BackendModel[]> {
    const started = performance.now();
    let outcome = 'ok';
    try {
      return await this.inner.listModels(signal);
    } catch (error) {
      outcome = error instanceof BackendError ? error.kind : signal?.aborted ? 'timeout' : 'error';
      throw error;
    } finally {
      this.metrics.backendCall(this.name, '', 'list_models', outcome, (performance.now() - started) / 1000);
    }
  }

  close() {
    return this.inner.close();
  }
}

export function instrumentModelListing(backend: Backend, metrics: Metrics): Backend {
  return new ObservedBackend(backend, metrics);
}
