import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { KeySealer } from './seal.js';

describe('KeySealer', () => {
  const secret = randomBytes(32);
  const sealer = new KeySealer(secret);

  it('opens what it sealed, for the same kid, with the same secret only', () => {
    const sealed = sealer.seal('{"d":"private"}', 'kid-1');
    expect(sealed).not.toContain('private');
    expect(new KeySealer(Buffer.from(secret)).open(sealed, 'kid-1')).toBe('{"d":"private"}');
    expect(sealer.open(sealed, 'kid-2'), 'moved to another row').toBeNull();
    expect(new KeySealer(randomBytes(32)).open(sealed, 'kid-1'), 'another secret').toBeNull();
  });

  it('says null for damaged or foreign text instead of throwing', () => {
    const sealed = sealer.seal('x', 'k');
    const [v, iv, body, tag] = sealed.split('.') as [string, string, string, string];
    const flipped = Buffer.from(body, 'base64url');
    flipped[0] = flipped[0]! ^ 1;
    for (const bad of [`${v}.${iv}.${flipped.toString('base64url')}.${tag}`, `v2.${iv}.${body}.${tag}`, `${v}.${iv}.${body}`, '', 'not sealed']) {
      expect(sealer.open(bad, 'k'), bad).toBeNull();
    }
  });
});
