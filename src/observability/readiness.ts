/**
 * What `/readyz` asks. Each part of the gateway that can make it unable to serve (the database,
 * the backends, the background-job worker) registers a check; `/readyz` runs them all at once,
 * each bounded by a timeout, and reports every result under the check's name.
 */

export interface CheckResult {
  ok: boolean;
  /** What `/readyz` shows under the check's name (defaults to `{ ok }`). */
  report?: unknown;
}

export type ReadinessCheck = (signal: AbortSignal) => Promise<CheckResult>;

export interface ReadinessOptions {
  /** Whether a failing check makes the gateway unready (503). Default true. */
  critical?: boolean;
}

export interface ReadinessReport {
  ready: boolean;
  checks: Record<string, unknown>;
}

export class Readiness {
  private readonly checks = new Map<string, { check: ReadinessCheck; critical: boolean }>();
  private readonly timeoutMs: number;

  constructor(timeoutMs = 5_000) {
    this.timeoutMs = timeoutMs;
  }

  register(name: string, check: ReadinessCheck, options: ReadinessOptions = {}): void {
    if (this.checks.has(name)) throw new Error(`A readiness check named '${name}' is already registered.`);
    this.checks.set(name, { check, critical: options.critical ?? true });
  }

  unregister(name: string): void {
    this.checks.delete(name);
  }

  async run(): Promise<ReadinessReport> {
    const entries = [...this.checks];
    const results = await Promise.all(entries.map(([name, { check }]) => this.runOne(name, check)));
    let ready = true;
    const checks: Record<string, unknown> = {};
    entries.forEach(([name, { critical }], index) => {
      const result = results[index]!;
      if (critical && !result.ok) ready = false;
      checks[name] = result.report ?? { ok: result.ok };
    });
    return { ready, checks };
  }

  private async runOne(name: string, check: ReadinessCheck): Promise<CheckResult> {
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<CheckResult>((resolve) => {
      timer = setTimeout(() => {
        controller.abort(new Error(`readiness check '${name}' timed out`));
        resolve({ ok: false, report: { ok: false, error: `no answer within ${this.timeoutMs} ms` } });
      }, this.timeoutMs);
    });
    try {
      return await Promise.race([
        check(controller.signal).catch((error: unknown) => ({
          ok: false,
          report: { ok: false, error: error instanceof Error ? error.message : String(error) },
        })),
        timeout,
      ]);
    } finally {
      clearTimeout(timer);
    }
  }
}
