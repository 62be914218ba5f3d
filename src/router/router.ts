import { modelNotFound } from '../api/errors.js';
import { BackendError } from '../backends/errors.js';
import type { Backend, BackendModel } from '../backends/types.js';
import type { FerryConfig, ModelConfig } from '../config/schema.js';

/** Where a request for a model goes: one backend and how that backend names the model. */
export interface Route {
  backend: Backend;
  /** The model name the client used (and sees echoed). */
  model: string;
  upstreamModel: string;
  contextWindow: number;
  options: Record<string, unknown> | undefined;
  /** The model's reasoning capabilities, when configured. */
  reasoning: ModelConfig['reasoning'];
}

export interface BackendHealth {
  name: string;
  kind: string;
  url: string;
  ok: boolean;
  latencyMs: number | null;
  lastError: string | null;
  checkedAt: number | null;
}

interface CatalogEntry {
  models: BackendModel[];
  names: Set<string>;
  fetchedAt: number;
  error: string | null;
  refreshing: Promise<void> | undefined;
}

const CATALOG_TTL_MS = 30_000;
const LIST_TIMEOUT_MS = 3_000;

/**
 * Resolves models to backends and keeps each backend's model list and health.
 *
 * A model is served by: the backends its configuration names; else the backends whose
 * configured or listed models include it (`name` also matches Ollama's `name:latest`); else,
 * when only one backend exists or some could not be listed, by the backends that might have
 * it, and the backend's own 404 becomes `model_not_found`. Lists are cached and refreshed in
 * the background, so resolving costs a map lookup on the hot path.
 */
export class Router {
  readonly backends: readonly Backend[];
  private readonly byName: Map<string, Backend>;
  private readonly catalog = new Map<string, CatalogEntry>();
  private readonly health = new Map<string, BackendHealth>();
  private readonly config: FerryConfig;

  constructor(config: FerryConfig, backends: readonly Backend[]) {
    this.config = config;
    this.backends = backends;
    this.byName = new Map(backends.map((backend) => [backend.name, backend]));
    for (const backend of backends) {
      this.health.set(backend.name, {
        name: backend.name,
        kind: backend.kind,
        url: backend.url,
        ok: true,
        latencyMs: null,
        lastError: null,
        checkedAt: null,
      });
    }
  }

  /** Candidate routes for a model, best first. Throws `model_not_found` when no backend can serve it. */
  async resolve(model: string): Promise<Route[]> {
    const settings = this.modelSettings(model);
    const upstreamModel = settings?.upstreamModel ?? model;
    let candidates: Backend[];
    if (settings?.backends?.length) {
      candidates = settings.backends.map((name) => this.byName.get(name)!);
    } else if (this.backends.length === 1) {
      candidates = [...this.backends];
    } else {
      candidates = await this.backendsServing(upstreamModel);
    }
    if (candidates.length === 0) throw modelNotFound(model);
    const contextWindow = settings?.contextWindow ?? this.config.defaultContextWindow;
    // Healthy backends first; an unhealthy one is still tried last rather than not at all.
    candidates.sort((a, b) => Number(!this.isHealthy(a.name)) - Number(!this.isHealthy(b.name)));
    return candidates.map((backend) => ({
      backend,
      model,
      upstreamModel,
      contextWindow,
      options: settings?.options,
      reasoning: settings?.reasoning,
    }));
  }

  private modelSettings(model: string): ModelConfig | undefined {
    return this.config.models[model] ?? this.config.models[stripLatest(model)];
  }

  private async backendsServing(model: string): Promise<Backend[]> {
    const serving: Backend[] = [];
    const unknown: Backend[] = [];
    await Promise.all(
      this.backends.map(async (backend) => {
        const configured = this.config.backends.find((entry) => entry.name === backend.name)?.models ?? [];
        if (configured.some((name) => sameModel(name, model))) {
          serving.push(backend);
          return;
        }
        const entry = await this.catalogFor(backend);
        if (entry.error) unknown.push(backend);
        else if (entry.names.has(model) || entry.names.has(`${model}:latest`)) serving.push(backend);
      }),
    );
    // Keep configuration order, so the first configured backend is preferred.
    const order = (backend: Backend) => this.backends.indexOf(backend);
    return (serving.length ? serving : unknown).sort((a, b) => order(a) - order(b));
  }

  private async catalogFor(backend: Backend): Promise<CatalogEntry> {
    let entry = this.catalog.get(backend.name);
    if (!entry) {
      entry = { models: [], names: new Set(), fetchedAt: 0, error: 'not listed yet', refreshing: undefined };
      this.catalog.set(backend.name, entry);
      await this.refresh(backend, entry);
    } else if (Date.now() - entry.fetchedAt > CATALOG_TTL_MS && !entry.refreshing) {
      // Stale: answer from the cache now and refresh in the background.
      void this.refresh(backend, entry);
    }
    return entry;
  }

  private refresh(backend: Backend, entry: CatalogEntry): Promise<void> {
    entry.refreshing ??= (async () => {
      const started = performance.now();
      try {
        const models = await backend.listModels(AbortSignal.timeout(LIST_TIMEOUT_MS));
        entry.models = models;
        entry.names = new Set(models.map((model) => model.id));
        entry.error = null;
        this.recordSuccess(backend.name, performance.now() - started);
      } catch (error) {
        entry.error = describe(error);
        this.recordFailure(backend.name, error);
      } finally {
        entry.fetchedAt = Date.now();
        entry.refreshing = undefined;
      }
    })();
    return entry.refreshing;
  }

  /** Every model any backend serves, plus configured ones; backends that cannot be reached are skipped. */
  async listModels(): Promise<{ id: string; created: number; ownedBy: string }[]> {
    const seen = new Map<string, { id: string; created: number; ownedBy: string }>();
    const entries = await Promise.all(
      this.backends.map(async (backend) => ({ backend, entry: await this.catalogFor(backend) })),
    );
    for (const { backend, entry } of entries) {
      const configured = this.config.backends.find((item) => item.name === backend.name)?.models ?? [];
      for (const id of configured) if (!seen.has(id)) seen.set(id, { id, created: 0, ownedBy: backend.name });
      for (const model of entry.models) {
        if (!seen.has(model.id))
          seen.set(model.id, { id: model.id, created: model.created ?? 0, ownedBy: backend.name });
      }
    }
    for (const [id, settings] of Object.entries(this.config.models)) {
      if (!seen.has(id)) seen.set(id, { id, created: 0, ownedBy: settings.backends?.[0] ?? 'ferry' });
    }
    return [...seen.values()];
  }

  /** Asks every backend for its models now (for /readyz); updates health and the catalog. */
  async probe(): Promise<BackendHealth[]> {
    await Promise.all(
      this.backends.map((backend) => {
        const entry = this.catalog.get(backend.name);
        if (entry) return this.refresh(backend, entry);
        return this.catalogFor(backend);
      }),
    );
    return this.backends.map((backend) => ({ ...this.health.get(backend.name)! }));
  }

  isHealthy(name: string): boolean {
    return this.health.get(name)?.ok ?? false;
  }

  recordSuccess(name: string, latencyMs: number): void {
    const health = this.health.get(name);
    if (!health) return;
    health.ok = true;
    health.latencyMs = Math.round(latencyMs * 10) / 10;
    health.checkedAt = Date.now();
  }

  recordFailure(name: string, error: unknown): void {
    const health = this.health.get(name);
    if (!health) return;
    // A backend that answered (even with an error status) is up; only reachability counts.
    if (error instanceof BackendError && !['unavailable', 'timeout', 'overloaded'].includes(error.kind))
      return;
    health.ok = false;
    health.lastError = describe(error);
    health.checkedAt = Date.now();
  }

  close(): Promise<void[]> {
    return Promise.all(this.backends.map((backend) => backend.close()));
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function stripLatest(model: string): string {
  return model.endsWith(':latest') ? model.slice(0, -':latest'.length) : model;
}

function sameModel(a: string, b: string): boolean {
  return a === b || stripLatest(a) === stripLatest(b);
}
