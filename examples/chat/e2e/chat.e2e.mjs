// End-to-end test of the chat demo in Debian's headless Chromium, driven by
// playwright-core (no browser download: executablePath /usr/bin/chromium).
//
// Two Daphne servers of the demo share one database and one channel layer on
// redis (test/integration/52_django_redis.sh starts them; server A is the one
// whose listener signals what pg_cron and psql do): alice and bob are two
// tabs of one browser on server A, carol a tab of another browser on server
// B. Checks, saving a screenshot of each:
//   1. every tab lists alice, bob and carol;
//   2. psql adds and removes an anonymous visitor: every tab sees it come and go;
//   3. bob's tab closes: alice and carol see him leave within a second;
//   4. server B is killed (SIGKILL: carol's connection dies, nobody calls
//      leave_all): alice sees carol pruned by pg_cron, not before max_age
//      and within max_age + one cron period;
//   5. exactly once: no tab received any change twice (window.presenceLog,
//      each message names its change), no member list twice in a row, no
//      joined/left line twice.
//
// Environment: CHAT_URL_A, CHAT_URL_B, CHAT_SERVER_B_PID, CHAT_MAX_AGE and
// CHAT_HEARTBEAT (seconds), CHAT_ROOM, SCREENSHOTS (a directory); psql runs
// with the PG* variables.
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const env = (name, fallback) => process.env[name] ?? fallback;
const urlA = env('CHAT_URL_A', 'http://127.0.0.1:8000');
const urlB = env('CHAT_URL_B', urlA);
const serverB = Number(env('CHAT_SERVER_B_PID', '0'));
const maxAge = Number(env('CHAT_MAX_AGE', '10'));
const heartbeat = Number(env('CHAT_HEARTBEAT', String(Math.max(1, maxAge / 3))));
const cronPeriod = 60;
const room = env('CHAT_ROOM', 'e2e-lobby');
const shots = env('SCREENSHOTS', 'screenshots');
mkdirSync(shots, { recursive: true });

const launchOptions = {
  executablePath: env('CHROMIUM', '/usr/bin/chromium'),
  headless: true,
  // Playwright gives every launch a fresh temporary --user-data-dir.
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
};

let failures = 0;
let checks = 0;
function check(ok, what) {
  checks += 1;
  if (!ok) failures += 1;
  console.log(`${ok ? 'ok' : 'not ok'} ${checks} - ${what}`);
}

// The names a page lists under "Here now".
const listed = (page) => page.$$eval('#people li[data-name]', (lis) => lis.map((li) => li.dataset.name));

// Waits until page lists exactly names; returns the ms it took, or null.
async function waitForList(page, names, timeoutMs) {
  const start = Date.now();
  try {
    await page.waitForFunction((want) => {
      const got = [...document.querySelectorAll('#people li[data-name]')].map((li) => li.dataset.name);
      return JSON.stringify(got.sort()) === JSON.stringify([...want].sort());
    }, names, { timeout: timeoutMs, polling: 20 });
    return Date.now() - start;
  } catch (e) {
    console.log(`# ${names.join(',')} not listed after ${timeoutMs} ms: page lists ${await listed(page)}`);
    return null;
  }
}

async function open(context, base, name) {
  const page = await context.newPage();
  await page.goto(`${base}/?room=${room}&name=${name}`);
  return page;
}

// Runs SQL with psql (a change made outside the app).
const psql = (sql) => execFileSync('psql', ['-X', '-q', '-o', '/dev/null', '-v', 'ON_ERROR_STOP=1', '-c', sql]);

// Waits until page shows n anonymous visitors.
async function waitForAnonymous(page, n, timeoutMs) {
  try {
    await page.waitForFunction((want) => {
      const log = window.presenceLog;
      return log.length > 0 && log[log.length - 1].anonymous === want;
    }, n, { timeout: timeoutMs, polling: 20 });
    return true;
  } catch (e) {
    return false;
  }
}

// The duplicates in what a page received: changes, consecutive lists, log lines.
async function duplicates(page) {
  return page.evaluate(() => {
    const out = [];
    const changes = new Set();
    let previous = null;
    for (const msg of window.presenceLog) {
      const change = JSON.stringify(msg.change);
      if (changes.has(change)) out.push(`change ${change} twice`);
      changes.add(change);
      const list = JSON.stringify([msg.people, msg.anonymous]);
      if (list === previous) out.push(`member list ${list} twice in a row`);
      previous = list;
    }
    const lines = [...document.querySelectorAll('#feed li.event')].map((li) => li.lastChild.textContent);
    lines.forEach((line, i) => { if (lines.indexOf(line) !== i) out.push(`log line "${line}" twice`); });
    return { out, messages: window.presenceLog.length, lines };
  });
}

async function shoot(page, file) {
  await page.screenshot({ path: join(shots, file) });
  console.log(`# screenshot ${join(shots, file)}`);
}

const browserA = await chromium.launch(launchOptions);
const browserB = await chromium.launch(launchOptions);
try {
  const viewport = { width: 960, height: 540 };
  const contextA = await browserA.newContext({ viewport });
  const contextB = await browserB.newContext({ viewport });
  const alice = await open(contextA, urlA, 'alice');
  const bob = await open(contextA, urlA, 'bob');
  const carol = await open(contextB, urlB, 'carol');
  await alice.fill('#text', 'hello from alice');
  await alice.press('#text', 'Enter');

  // 1. Everyone sees everyone.
  const all = ['alice', 'bob', 'carol'];
  const seen = await Promise.all([alice, bob, carol].map((p) => waitForList(p, all, 10000)));
  check(seen.every((ms) => ms !== null), `alice, bob (server A) and carol (server B) all list ${all}`);
  await shoot(alice, '1-all-present.png');

  // 2. A change made with psql, not through the app.
  psql(`SELECT presence.add('${room}', 'psql-visitor')`);
  let came = await Promise.all([alice, bob, carol].map((p) => waitForAnonymous(p, 1, 5000)));
  psql(`SELECT presence.remove('${room}', 'psql-visitor')`);
  let went = await Promise.all([alice, bob, carol].map((p) => waitForAnonymous(p, 0, 5000)));
  check(came.every(Boolean) && went.every(Boolean),
    'psql added and removed an anonymous visitor: every tab saw it come and go');

  // 3. bob closes his tab: gone for the others within a second.
  const bobs = await duplicates(bob);
  check(bobs.out.length === 0, `bob's tab: ${bobs.messages} presence messages, each change once` +
    `${bobs.out.length ? `; but: ${bobs.out.join('; ')}` : ''}`);
  let start = Date.now();
  await bob.close();
  const closeMs = Date.now() - start;
  const left = await Promise.all([alice, carol].map((p) => waitForList(p, ['alice', 'carol'], 5000)));
  const leaveMs = Date.now() - start;
  check(left.every((ms) => ms !== null) && leaveMs <= 1000,
    `bob closed his tab: alice and carol saw him leave in ${leaveMs} ms (limit 1000; close() took ${closeMs} ms)`);
  await shoot(alice, '2-bob-closed.png');

  // 4. carol's server dies without closing anything: pg_cron prunes her.
  if (serverB) {
    start = Date.now();
    process.kill(serverB, 'SIGKILL');
    const limit = (maxAge + cronPeriod + 10) * 1000;
    const prunedMs = await waitForList(alice, ['alice'], limit);
    const floor = (maxAge - heartbeat - 0.5) * 1000;
    check(prunedMs !== null && prunedMs >= floor,
      `server B killed: alice saw carol pruned after ${prunedMs} ms ` +
      `(not before max_age - heartbeat = ${floor} ms, limit max_age + cron period + 10 s = ${limit} ms)`);
    await shoot(alice, '3-carol-pruned.png');
    await shoot(carol, '3-carol-cut-off.png');
  } else {
    console.log('# CHAT_SERVER_B_PID not set: skipping the prune check');
  }

  // 5. Exactly once, on every tab still open (bob's was checked as it closed).
  await new Promise((resolve) => setTimeout(resolve, 1000));
  for (const [name, page] of [['alice', alice], ['carol', carol]]) {
    const { out, messages, lines } = await duplicates(page);
    check(out.length === 0, `${name}'s tab: ${messages} presence messages, each change once` +
      `${out.length ? `; but: ${out.join('; ')}` : ''}; log: ${lines.join(' | ')}`);
  }
} catch (e) {
  check(false, `unexpected error: ${e.stack || e}`);
} finally {
  await Promise.all([browserA.close(), browserB.close()]);
}
console.log(`${checks - failures} passed, ${failures} failed`);
process.exit(failures ? 1 : 0);
