import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderErrorDocs } from '../scripts/error-docs.js';
import { CATALOG, EXIT, IqpError, toIqpError } from './errors.js';
import { PACKAGE_ROOT } from './paths.js';

describe('error catalog', () => {
  it('docs/errors.md is the rendering of the catalog (run node dist/scripts/error-docs.js)', () => {
    expect(readFileSync(join(PACKAGE_ROOT, 'docs', 'errors.md'), 'utf8')).toBe(renderErrorDocs());
  });

  it('every code has a message, a hint, a documented exit code and an HTTP error status', () => {
    const exits = new Set<number>(Object.values(EXIT));
    for (const [code, spec] of Object.entries(CATALOG)) {
      expect(code).toMatch(/^IQP_E_[A-Z0-9_]+$/);
      expect(spec.message.length, code).toBeGreaterThan(5);
      expect(spec.hint.length, code).toBeGreaterThan(5);
      expect(exits.has(spec.exit), code).toBe(true);
      expect(spec.exit, code).not.toBe(0);
      expect(spec.http >= 400 && spec.http <= 599, code).toBe(true);
    }
  });

  it('maps system errors and unknown throws to codes', () => {
    expect(toIqpError(Object.assign(new Error('no such file'), { code: 'ENOENT', path: '/x' })).code).toBe('IQP_E_FILE_NOT_FOUND');
    expect(toIqpError(Object.assign(new Error('disk full'), { code: 'ENOSPC' })).code).toBe('IQP_E_IO');
    // A path naming the wrong kind of thing is a usage problem, never "check free disk space".
    const isDir = toIqpError(Object.assign(new Error('EISDIR: illegal operation on a directory, read'), { code: 'EISDIR' }));
    expect([isDir.code, isDir.exitCode, isDir.hint]).toEqual(['IQP_E_USAGE', EXIT.usage, 'Give the path of a file, not a folder.']);
    expect(toIqpError(Object.assign(new Error('x'), { code: 'EISDIR', path: '/d' })).message).toBe('/d is a folder, not a file.');
    expect(toIqpError(Object.assign(new Error('x'), { code: 'ENOTDIR', path: '/f/x' })).code).toBe('IQP_E_FILE_NOT_FOUND');
    expect(toIqpError(Object.assign(new Error('x'), { code: 'EEXIST', path: '/f', syscall: 'mkdir' })).message).toBe('/f already exists, and is not a folder.');
    expect(toIqpError(Object.assign(new Error('x'), { name: 'ExitPromptError' })).code).toBe('IQP_E_CANCELLED');
    // TLS: the connection's failure, with a hint about the URL's scheme or the certificate.
    const wrongVersion = toIqpError(Object.assign(new Error('80FC…:error:0A00010B:SSL routines::wrong version number'), { code: 'ERR_SSL_WRONG_VERSION_NUMBER', reason: 'wrong version number' }));
    expect([wrongVersion.code, wrongVersion.exitCode, wrongVersion.message]).toEqual(['IQP_E_NETWORK', EXIT.network, 'TLS failed: wrong version number (ERR_SSL_WRONG_VERSION_NUMBER).']);
    expect(wrongVersion.hint).toContain('http://');
    for (const code of ['DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'CERT_HAS_EXPIRED', 'ERR_TLS_CERT_ALTNAME_INVALID']) {
      const cert = toIqpError(Object.assign(new Error('certificate problem'), { code }));
      expect([cert.code, cert.hint.includes('certificate')], code).toEqual(['IQP_E_NETWORK', true]);
    }
    expect(toIqpError(new TypeError('boom')).exitCode).toBe(EXIT.internal);
    const coded = new IqpError('IQP_E_SIG_INVALID');
    expect(toIqpError(coded)).toBe(coded);
    expect(coded.toJSON()).toEqual({ code: 'IQP_E_SIG_INVALID', message: CATALOG.IQP_E_SIG_INVALID.message, hint: CATALOG.IQP_E_SIG_INVALID.hint });
  });
});
