import { expect, test } from 'vitest';
import { EngineTurns } from '../electron/relay/engine-turns.ts';

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

test('two at a time; a suspect waits for the engine to empty, runs alone, first come first served', async () => {
  const turns = new EngineTurns(2);
  const log: string[] = [];
  const ends = new Map<string, () => void>();
  const take = (name: string, alone = false) =>
    void turns.take(alone).then((end) => {
      log.push(name);
      ends.set(name, end);
    });
  take('a');
  take('b');
  take('suspect', true);
  take('c');
  await tick();
  expect(log).toEqual(['a', 'b']);
  ends.get('a')!();
  await tick();
  expect(log).toEqual(['a', 'b']); // the suspect waits for b too
  ends.get('b')!();
  await tick();
  expect(log).toEqual(['a', 'b', 'suspect']); // alone: c waits
  ends.get('suspect')!();
  ends.get('suspect')!(); // ending twice gives back one turn only
  await tick();
  expect(log).toEqual(['a', 'b', 'suspect', 'c']);
  take('d');
  take('e');
  await tick();
  expect(log).toEqual(['a', 'b', 'suspect', 'c', 'd']);
});
