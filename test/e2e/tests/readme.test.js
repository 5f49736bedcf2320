// Issue 2, "tried as a new user would": the README's curl example, run as written (only the
// binary path, the port and the key are substituted), broadcasts a message a connected client prints.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { harness } from '../lib/harness.js';
import { signalboxBinary } from '../lib/server.js';
import { TARGETS } from '../lib/clients.js';
import { rand } from '../lib/util.js';

const run = promisify(execFile);
const readme = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../README.md');
const KEY = 'readme-key-' + rand() + '-0123456789abcdefghijklmn';
const h = harness({ keys: [KEY] });

/** The shell block under the "curl" heading of the README. */
function curlExample() {
  const text = fs.readFileSync(readme, 'utf8');
  const heading = text.search(/^#+ .*curl/im);
  assert.ok(heading >= 0, 'README has a section about broadcasting with curl');
  const block = text.slice(heading).match(/```(?:sh|bash|shell)\n([\s\S]*?)```/);
  assert.ok(block, 'the curl section has a shell block');
  return block[1];
}

test('the README curl example broadcasts a message that a connected client receives', async () => {
  const bin = signalboxBinary();
  const script = curlExample();
  assert.match(script, /curl /, 'the example runs curl');
  const target = script.match(/"target"\s*:\s*"([^"]+)"/)?.[1];
  const text = script.match(/"arguments"\s*:\s*\[\s*"([^"]*)"/)?.[1];
  assert.ok(target && text, 'the example sends a target with a string argument');

  // The server is already running (started by the harness with $KEY); everything else runs as written.
  const adapted = script
    .split('\n')
    .filter((line) => !/^\s*signalbox serve\b/.test(line))
    .join('\n')
    .replaceAll('http://localhost:8888', h.server.url)
    .replace(/(^|\$\(|\s)signalbox /gm, `$1${bin} `);

  // A client of hub "chat", with a token from `signalbox token` as the README says.
  const hub = script.match(/\/api\/hubs\/([^/]+)\//)?.[1] ?? 'chat';
  const { stdout: clientToken } = await run(bin, ['token', '--access-key', KEY, '--hub', hub, '--endpoint', h.server.url]);
  const c = await h.build({ hub, token: clientToken.trim(), transport: 'ws' });
  h.pool.clients.add(c);
  if (!TARGETS.includes(target)) c.conn.on(target, (...args) => c._record(target, args));
  await c.conn.start();

  const { stdout, stderr } = await run('bash', ['-euo', 'pipefail', '-c', adapted + `\necho "HTTP-OK"`], {
    env: { ...process.env, KEY },
    cwd: path.dirname(readme), // the README's commands run from the repository root
    timeout: 30000,
  }).catch((err) => {
    throw new Error(`the README example failed: ${err.message}\nscript:\n${adapted}\nstderr:\n${err.stderr}`);
  });
  assert.match(stdout, /HTTP-OK/, stderr);
  const m = await c.waitFor(target, (a) => a === text, { what: `${target}(${text}) from the README's curl` });
  assert.deepEqual(m.args, [text]);
});
