/**
 * Loaded into Ferry with `node --import` by `npm run bench:profile -- --allocations` (plain
 * JavaScript, because Ferry runs from `dist/` without a TypeScript loader). Between two
 * SIGUSR2s it runs V8's sampling heap profiler over every allocation, including the objects
 * young-generation collections have already freed, which is what costs a gateway garbage
 * collection. Each step is announced by a file appearing whole (written, then renamed):
 * `$FERRY_ALLOCATION_PROFILE.started` once sampling runs, then the profile itself.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';

const file = process.env.FERRY_ALLOCATION_PROFILE;
if (file) {
  const session = new Session();
  session.connect();
  let sampling = false;
  process.on('SIGUSR2', async () => {
    sampling = !sampling;
    if (sampling) {
      await session.post('HeapProfiler.startSampling', {
        samplingInterval: 1024,
        includeObjectsCollectedByMinorGC: true,
        includeObjectsCollectedByMajorGC: true,
      });
      publish(`${file}.started`, '');
      return;
    }
    const { profile } = await session.post('HeapProfiler.stopSampling');
    publish(file, JSON.stringify(profile));
  });
}

/** Writes `text` to `path` so that a reader polling for the file never sees it half written. */
function publish(path, text) {
  writeFileSync(`${path}.partial`, text);
  renameSync(`${path}.partial`, path);
}
