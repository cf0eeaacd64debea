import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GENERATED, renderManifestValidator } from '../../scripts/manifest-validator.js';
import { isIqpError } from '../errors.js';
import { isSemver, validateManifest } from './manifest.js';

const good = {
  format: 1,
  package_id: 'quran.translation.en',
  package_type: 'translation',
  version: '1.0.0',
  language_code: 'en',
  name: 'English',
  description: '',
  min_app_version: '1.0.0',
  created_at: '2026-01-01T00:00:00Z',
  files: [{ path: 'content.sqlite', size_bytes: 4096, sha256: 'a'.repeat(64) }],
  tables: [{ name: 'verses', row_count: 1, columns: ['id'] }],
};

function codeOf(value: unknown): string {
  try {
    validateManifest(value);
    return 'ok';
  } catch (err) {
    return isIqpError(err) ? err.code : String(err);
  }
}

describe('manifest validation', () => {
  it('uses a validator generated from the published schema (node dist/scripts/manifest-validator.js)', () => {
    expect(readFileSync(GENERATED, 'utf8')).toBe(renderManifestValidator());
  });

  it('accepts a good manifest and names what is wrong with a bad one', () => {
    expect(codeOf(good)).toBe('ok');
    expect(codeOf({ ...good, extra: 1 })).toBe('IQP_E_MANIFEST_SCHEMA');
    expect(codeOf({ ...good, version: '1.0' })).toBe('IQP_E_MANIFEST_SEMVER');
    expect(codeOf({ ...good, language_code: 'en_US' })).toBe('IQP_E_MANIFEST_LANGUAGE');
    expect(codeOf({ ...good, format: 2 })).toBe('IQP_E_MANIFEST_FORMAT');
    expect(codeOf({ ...good, created_at: '2026-13-45T00:00:00Z' })).toBe('IQP_E_MANIFEST_SCHEMA');
    expect(codeOf({ ...good, created_at: '2026-01-01 00:00:00Z' })).toBe('IQP_E_MANIFEST_SCHEMA');
    // Lengths count code points, as JSON Schema does: 200 emoji are a 200-character name.
    expect(codeOf({ ...good, name: '🕌'.repeat(200) })).toBe('ok');
    expect(codeOf({ ...good, name: '🕌'.repeat(201) })).toBe('IQP_E_MANIFEST_SCHEMA');
  });
});

describe('isSemver', () => {
  it('accepts what the semver library accepts, exactly as written', () => {
    for (const v of ['0.0.0', '1.2.3', '1.0.0-beta.1', '1.0.0+build.5', '1.0.0-rc.1+sha.0a1', `${Number.MAX_SAFE_INTEGER}.0.0`, '1.0.0-99999999999999999999']) {
      expect(isSemver(v), v).toBe(true);
    }
  });

  it('refuses parts beyond Number.MAX_SAFE_INTEGER, which the semver library cannot compare', () => {
    for (const v of ['99999999999999999999.0.0', '1.99999999999999999999.0', '1.0.99999999999999999999', `${Number.MAX_SAFE_INTEGER + 1}.0.0`]) {
      expect(isSemver(v), v).toBe(false);
      expect(codeOf({ ...good, version: v })).toBe('IQP_E_MANIFEST_SEMVER');
      expect(codeOf({ ...good, min_app_version: v })).toBe('IQP_E_MANIFEST_SEMVER');
    }
  });

  it('refuses what the library would only accept after cleaning it up, and overlong versions', () => {
    for (const v of ['v1.0.0', '=1.0.0', ' 1.0.0', '1.0.0 ', '1.0', '01.0.0', '>=1.0.0', '', `1.0.0-${'a'.repeat(59)}`]) {
      expect(isSemver(v), JSON.stringify(v)).toBe(false);
    }
    expect(isSemver(`1.0.0-${'a'.repeat(58)}`)).toBe(true);
    expect(isSemver(1)).toBe(false);
    expect(isSemver(null)).toBe(false);
  });
});
