// The playground in Debian's headless Chromium: an allowed and a denied example, an edit that
// flips the decision, and a screenshot. Run by `cargo xtask browser-test`, which serves the page
// and sets GATEWARD_PLAYGROUND_URL, GATEWARD_CHROMIUM and GATEWARD_SCREENSHOT.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const url = process.env.GATEWARD_PLAYGROUND_URL;
const executablePath = process.env.GATEWARD_CHROMIUM || '/usr/bin/chromium';
const screenshot = process.env.GATEWARD_SCREENSHOT;
if (!url || !screenshot) {
  console.error('set GATEWARD_PLAYGROUND_URL and GATEWARD_SCREENSHOT (cargo xtask browser-test does)');
  process.exit(2);
}

// Generous bounds so a loaded machine never hangs the run; nothing asserts on time.
const WAIT = { timeout: 60_000 };
let passed = 0;
let failed = 0;

function assert(cond, what) {
  if (!cond) throw new Error(what);
}

async function test(name, fn) {
  try {
    await fn();
    passed += 1;
    console.log(`PASS ${name}`);
  } catch (e) {
    failed += 1;
    console.log(`FAIL ${name}: ${e.message}`);
  }
}

async function decision(page) {
  return page.$eval('#decision', (d) => ({
    decision: d.dataset.decision,
    code: d.dataset.code,
    example: d.dataset.example,
    run: Number(d.dataset.run),
    message: d.querySelector('#message').textContent,
  }));
}

/** Waits until a check newer than run `after` has rendered. */
async function nextResult(page, after) {
  await page.waitForFunction((n) => Number(document.querySelector('#decision').dataset.run) > n, after, WAIT);
  return decision(page);
}

async function loadExample(page, id) {
  const before = (await decision(page)).run;
  await page.selectOption('#example', id);
  await page.waitForFunction(
    ([id, n]) => {
      const d = document.querySelector('#decision').dataset;
      return d.example === id && Number(d.run) > n;
    },
    [id, before],
    WAIT,
  );
  return decision(page);
}

async function trueRules(page) {
  return page.$$eval('#rules tr.rule-true', (rows) => rows.map((r) => r.dataset.path));
}

const userDataDir = mkdtempSync(join(tmpdir(), 'gateward-chromium-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath,
  headless: true,
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
  viewport: { width: 1680, height: 1050 },
});

const pageErrors = [];
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') pageErrors.push(m.text());
  });
  await page.goto(url);
  await page.waitForSelector('#status[data-ready="true"]', WAIT);

  await test('examples load from examples.json', async () => {
    const ids = await page.$$eval('#example option', (os) => os.map((o) => o.value).filter(Boolean));
    assert(ids.includes('github_deploy-allow') && ids.includes('github_deploy-deny'), `options: ${ids}`);
    assert(ids.length === 12, `expected 12 examples, got ${ids.length}`);
  });

  await test('denied example: pull_request_target on main', async () => {
    const d = await loadExample(page, 'github_deploy-deny');
    assert(d.decision === 'deny', `decision ${d.decision}: ${d.message}`);
    assert(d.code === 'policy_denied', `code ${d.code}`);
    assert(d.message.includes('pull_request_target'), `message: ${d.message}`);
    const rules = await trueRules(page);
    assert(rules.includes('data.gateward.examples.github_deploy.applies'), `true rules: ${rules}`);
    const allowing = await page.$eval('#rules tr[data-path="data.gateward.examples.github_deploy.allowing"] td.value', (td) => td.textContent);
    assert(allowing === '[]', `no route allows it, yet allowing = ${allowing}`);
  });

  await test('allowed example: production deploy from main', async () => {
    const d = await loadExample(page, 'github_deploy-allow');
    assert(d.decision === 'allow', `decision ${d.decision}: ${d.message}`);
    assert(d.code === '', `code ${d.code}`);
    const rules = await trueRules(page);
    assert(rules.includes('data.gateward.examples.github_deploy.applies'), `true rules: ${rules}`);
    const covered = await page.$$eval('#rego-hl .covered', (l) => l.length);
    assert(covered > 0, 'no covered lines highlighted in the Rego');
    const config = JSON.parse(await page.$eval('#config', (t) => t.value));
    const kid = config.issuers[0].jwks.keys[0].kid;
    assert(kid.startsWith('playground-dev-'), `the issuer should trust the page key, has ${kid}`);
  });

  await test('editing a claim re-signs and flips the decision', async () => {
    const before = (await decision(page)).run;
    const claims = JSON.parse(await page.$eval('#claims', (t) => t.value));
    claims.ref = 'refs/heads/feature';
    await page.fill('#claims', JSON.stringify(claims, null, 2));
    const d = await nextResult(page, before);
    assert(d.decision === 'deny' && d.code === 'policy_denied', `${d.decision} ${d.code}: ${d.message}`);
    const e2 = await loadExample(page, 'github_deploy-allow');
    assert(e2.decision === 'allow', 'reloading the example allows again');
  });

  await test('another provider: GitLab fork pipeline is denied', async () => {
    const d = await loadExample(page, 'gitlab_deploy-deny');
    assert(d.decision === 'deny' && d.code === 'policy_denied', `${d.decision} ${d.code}: ${d.message}`);
  });

  await test('a pasted garbage token is token_malformed', async () => {
    const before = (await decision(page)).run;
    await page.check('input[name="mode"][value="paste"]');
    const after = await nextResult(page, before);
    const run = after.run;
    await page.fill('#token', 'not.a.token');
    const d = await nextResult(page, run);
    assert(d.decision === 'deny' && d.code === 'token_malformed', `${d.decision} ${d.code}`);
    const warn = await page.$eval('#inspect', (e) => e.textContent);
    assert(warn.includes('not a token'), `inspect: ${warn}`);
  });

  await test('no page errors', async () => {
    assert(pageErrors.length === 0, pageErrors.join('; '));
  });

  // The screenshot shows the allowed example with its covered lines.
  await loadExample(page, 'github_deploy-allow');
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(`screenshot: ${screenshot}`);
} finally {
  await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
