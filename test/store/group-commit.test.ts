import { describe, expect, it } from 'vitest';
import { GroupCommit, type Settled } from '../../src/store/group-commit.js';

describe('GroupCommit', () => {
  it('commits the writes of one turn of the event loop together, and later ones apart', async () => {
    const groups: number[][] = [];
    const commits = new GroupCommit<number, number>(async (values) => {
      groups.push([...values]);
      return values.map((value): Settled<number> => ({ ok: true, value: value * 10 }));
    });
    expect(await Promise.all([commits.add(1), commits.add(2), commits.add(3)])).toEqual([10, 20, 30]);
    expect(await commits.add(4)).toBe(40);
    expect(groups).toEqual([[1, 2, 3], [4]]);
  });

  it('gives each write its own outcome, and every write the error of a failed commit', async () => {
    const perWrite = new GroupCommit<number, number>(async (values) =>
      values.map((value) =>
        value < 0 ? { ok: false, error: new Error(`bad ${value}`) } : { ok: true, value },
      ),
    );
    const outcomes = await Promise.allSettled([perWrite.add(1), perWrite.add(-1), perWrite.add(2)]);
    expect(outcomes).toEqual([
      { status: 'fulfilled', value: 1 },
      { status: 'rejected', reason: new Error('bad -1') },
      { status: 'fulfilled', value: 2 },
    ]);

    let databaseDown = true;
    const flaky = new GroupCommit<number, number>(async (values) => {
      if (databaseDown) throw new Error('database is locked');
      return values.map((value) => ({ ok: true, value }));
    });
    const failed = await Promise.allSettled([flaky.add(1), flaky.add(2)]);
    expect(failed).toEqual([
      { status: 'rejected', reason: new Error('database is locked') },
      { status: 'rejected', reason: new Error('database is locked') },
    ]);
    // Nothing of the failed group lingers: the next one is committed afresh.
    databaseDown = false;
    expect(await flaky.add(5)).toBe(5);
  });
});
