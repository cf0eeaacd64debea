import { describe, expect, it } from 'vitest';
import { type AuthoredText, authoringWarnings } from './authoring.js';
import type { AuthoredManifest } from './format.js';

const pack: AuthoredManifest = {
  package_id: 'acme.notes',
  package_type: 'notes',
  version: '1.0.0',
  language_code: 'en',
  name: 'Notes',
  description: 'Shared example text.',
  min_app_version: '1.0.0',
};

describe('authoringWarnings', () => {
  it('says "a template\'s" for text several templates share, none of them the pack\'s own', () => {
    const texts = new Map<AuthoredText, Map<string, string[]>>([['description', new Map([['Shared example text.', ['deck', 'dataset']]])]]);
    const [warning] = authoringWarnings(pack, [], texts);
    expect(warning?.message).toBe('iqp.json: "description" is still a template\'s example text; write this pack\'s own (users see it).');
    const own = authoringWarnings({ ...pack, package_type: 'dataset' }, [], texts);
    expect(own[0]?.message).toContain('the dataset template\'s example text');
  });
});
