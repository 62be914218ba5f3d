import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

export interface FerryProcess {
  child: ChildProcess;
  /** `http://127.0.0.1:PORT`, read from the start-up log line. */
  url: string;
  output(): string;
  /** Sends a signal and resolves with the exit code (bounded wait). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Runs `ferry` from source in a child process, as a user would run the built command. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Starts `ferry serve` in a child process and waits until it listens. */
export async function startFerryProcess(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 20_000,
): Promise<FerryProcess> {
  const child = runCli(['serve', '--port', '0', ...args], env);
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`ferry did not start within ${timeoutMs} ms:\n${output}`)),
      timeoutMs,
    );
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /"url":"(http:\/\/[^"]+)"/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`ferry exited with ${code} before listening:\n${output}`));
    });
  });
  return {
    child,
    url,
    output: () => output,
    stop: (signal = 'SIGTERM') => waitForExit(child, signal),
  };
}

export function waitForExit(
  child: ChildProcess,
  signal?: NodeJS.Signals,
  timeoutMs = 15_000,
): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('process did not exit in time'));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
    if (signal) child.kill(signal);
  });
}
