// Seals made by the plugin open with the real iron-session, and seals made by
// iron-session the way authkit-nextjs makes them open with the plugin.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sealData, unsealData } from 'iron-session';

const here = dirname(fileURLToPath(import.meta.url));
const password = 'this-is-a-test-cookie-password-0123456789abcdef';
const rotated = { 1: 'old-rotation-password-aaaaaaaaaaaaaaaaaaaaaaaaaa', 2: 'new-rotation-password-bbbbbbbbbbbbbbbbbbbbbbbbbb' };
let cli;

before(() => {
  cli = join(mkdtempSync(join(tmpdir(), 'ironcli-')), 'ironcli');
  execFileSync('go', ['build', '-o', cli, './interop/ironcli'], { cwd: join(here, '..'), stdio: 'inherit' });
});

// passwords as iron-session takes them: a string is id "1".
const idMap = (p) => (typeof p === 'string' ? { 1: p } : p);

function goSeal(payload, passwords, ttlSeconds) {
  return execFileSync(cli, ['seal', String(ttlSeconds)], {
    input: JSON.stringify(payload),
    env: { ...process.env, IRON_PASSWORDS: JSON.stringify(idMap(passwords)) },
  }).toString();
}

function goUnseal(sealed, passwords) {
  const out = execFileSync(cli, ['unseal'], {
    input: sealed,
    env: { ...process.env, IRON_PASSWORDS: JSON.stringify(idMap(passwords)) },
  });
  return JSON.parse(out.toString());
}

// The payload authkit-nextjs seals into wos-session (camelCase SDK user).
const session = {
  accessToken: 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyXzEifQ.c2ln',
  refreshToken: 'refresh_01HTEST',
  user: {
    object: 'user', id: 'user_01HTEST', email: 'ada@example.com', emailVerified: true,
    firstName: 'Ada', profilePictureUrl: null, lastName: 'Lovelace', lastSignInAt: '2026-11-01T10:00:00.000Z',
    locale: null, createdAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-11-01T10:00:00.000Z',
    externalId: null, metadata: { team: 'Analytical Engines', note: 'héllo ✓ 🦊' },
  },
  impersonator: { email: 'admin@example.com', reason: 'support' },
  authenticationMethod: 'Password',
};
const pkceState = { nonce: '2f1c7a0e-5b7d-4d0e-9f4a-1c2b3d4e5f60', codeVerifier: 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk', returnPathname: '/dashboard?tab=1' };

test('iron-session opens a session the plugin sealed with ttl 0', async () => {
  const sealed = goSeal(session, password, 0);
  assert.match(sealed, /^Fe26\.2\*1\*[0-9a-f]{64}\*[\w-]{22}\*[\w-]+\*\*[0-9a-f]{64}\*[\w-]{43}~2$/);
  assert.deepEqual(await unsealData(sealed, { password }), session);
});

test('iron-session opens a PKCE state the plugin sealed with ttl 600', async () => {
  const sealed = goSeal(pkceState, password, 600);
  const expiration = Number(sealed.split('*')[5]);
  assert.ok(Math.abs(expiration - (Date.now() + 600_000)) < 10_000, `expiration ${expiration}`);
  assert.deepEqual(await unsealData(sealed, { password, ttl: 600 }), pkceState);
});

test('iron-session opens a plugin seal made with rotated passwords, id 2', async () => {
  const sealed = goSeal(session, rotated, 0);
  assert.equal(sealed.split('*')[1], '2');
  assert.deepEqual(await unsealData(sealed, { password: rotated }), session);
  assert.deepEqual(await unsealData(sealed, { password: { 1: rotated[1] } }), {}, 'old keyring must not open it');
});

test('iron-session refuses a plugin seal under another password', async () => {
  const sealed = goSeal(session, password, 0);
  assert.deepEqual(await unsealData(sealed, { password: rotated[2] }), {});
});

test('the plugin opens a session iron-session sealed the way authkit-nextjs does', async () => {
  const sealed = await sealData(session, { password, ttl: 0 });
  assert.deepEqual(goUnseal(sealed, password), session);
});

test('the plugin opens an iron-session seal made with a password map', async () => {
  const sealed = await sealData(pkceState, { password: rotated, ttl: 600 });
  assert.deepEqual(goUnseal(sealed, rotated), pkceState);
});

test('the plugin refuses an iron-session seal under another password', async () => {
  const sealed = await sealData(session, { password, ttl: 0 });
  assert.throws(() => goUnseal(sealed, rotated[2] + 'x'), /bad hmac/);
});
