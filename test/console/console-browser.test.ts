// The console in a real browser (Debian's chromium driven by playwright-core) against a real fleet:
// sign in, submit a prefix purge, watch it reach success live over SSE, filter the history, watch the
// fleet page follow a node's applied sequence live, sign out;
// a second account cannot see the first one's job. Screenshots go to test-artifacts/console/.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { GLOBEX } from '../helpers/control-plane.ts';
import { ACME, Fleet } from '../e2e/helpers.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = resolve(import.meta.dirname, '../../test-artifacts/console');
/** Web-first waits: generous, the machine is shared. */
const WAIT = { timeout: 20_000 };

const missing = existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is not installed (apt-get install chromium; .ci/run installs it)`;
if (missing && process.env.CI === 'true') throw new Error(`console browser test: ${missing}`);
if (missing) process.stderr.write(`\n!!! SKIPPING the console browser test: ${missing}\n\n`);

async function launch(t: { after(fn: () => unknown): void }): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
  });
  t.after(() => browser.close());
  return browser;
}

const shot = (page: Page, name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });

async function signIn(page: Page, url: string, who: { secretId: string; secretKey: string }): Promise<void> {
  await page.goto(`${url}/console/`);
  await page.getByLabel('SecretId').fill(who.secretId);
  await page.getByLabel('SecretKey').fill(who.secretKey);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Purge history' }).waitFor(WAIT);
}

test('console in chromium: sign in, purge a prefix and watch it settle live, filter, sign out; another account sees nothing', { skip: missing }, async (t) => {
  mkdirSync(ARTIFACTS, { recursive: true });
  // A long lease: the node is held off the log for a while and must still count as applied, not fenced.
  const fleet = await Fleet.start(t, { nodeCount: 1, leaseMs: 30_000, taskTimeoutMs: 60_000 });
  const browser = await launch(t);
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (m) => void (m.type() === 'error' && problems.push(m.text())));
  page.on('pageerror', (e) => void problems.push(e.message));
  const streams: string[] = [];
  page.on('request', (r) => void (r.url().includes('/events') && streams.push(r.url())));
  try {
    await signIn(page, fleet.url, ACME);
    await shot(page, '1-history-empty');

    // The node is cut off from the control plane: the purge stays processing until the link is back.
    fleet.node('edge-1').link.pause();
    await page.getByRole('link', { name: 'New purge' }).click();
    await page.getByRole('radio', { name: /Directories/ }).check();
    await page.getByLabel('Zone', { exact: true }).selectOption(ACME.zoneId);
    await page.getByLabel('Method', { exact: true }).selectOption('invalidate');
    await page.getByLabel(/Targets/).fill(`http://${ACME.host}/console-e2e/`);
    await shot(page, '2-purge-form');
    await page.getByRole('button', { name: 'Submit' }).click();
    await page.getByRole('heading', { name: /^Job / }).waitFor(WAIT);
    const jobUrl = new URL(page.url());
    const jobId = /\/console\/jobs\/([0-9a-z]+)$/.exec(jobUrl.pathname)?.[1];
    assert.ok(jobId, `landed on ${page.url()}`);
    await page.getByRole('status').filter({ hasText: 'Live' }).waitFor(WAIT);
    await page.locator('.node.n-pending', { hasText: 'edge-1' }).waitFor(WAIT);
    await shot(page, '3-job-live');

    // From here on the page must update by itself: mark it, and check the mark survives (no reload).
    await page.evaluate(() => ((globalThis as unknown as { stayedPut: boolean }).stayedPut = true));
    fleet.node('edge-1').link.resume();
    await page.getByRole('status').filter({ hasText: 'Settled' }).waitFor(WAIT);
    await page.locator('tr[data-status="success"] .node.n-applied', { hasText: 'edge-1' }).waitFor(WAIT);
    // What the node's cache executed, as it reported it (issue 8): the built-in edge ran the invalidate.
    await page.locator('.node.n-applied .executed', { hasText: 'invalidate' }).waitFor(WAIT);
    assert.equal(await page.evaluate(() => (globalThis as unknown as { stayedPut?: boolean }).stayedPut), true, 'the job page updated without reloading');
    assert.ok(streams.some((u) => u.endsWith(`/console/jobs/${jobId}/events`)), `the page listened to its event stream: ${streams.join(', ')}`);
    assert.equal((await fleet.adminJob(jobId)).Tasks[0]?.Nodes[0]?.State, 'applied');
    await shot(page, '4-job-settled');

    // History: filter by a fragment of the target, then by a status it does not have.
    await page.getByRole('link', { name: 'History' }).first().click();
    await page.getByLabel('Target').fill('CONSOLE-E2E');
    await page.getByLabel('contains').check();
    await page.getByRole('button', { name: 'Filter' }).click();
    const row = page.locator('table.tasks tbody tr');
    await row.filter({ hasText: `http://${ACME.host}/console-e2e/` }).waitFor(WAIT);
    assert.equal(await row.count(), 1);
    assert.match((await row.first().textContent()) ?? '', /success/);
    await shot(page, '5-history-filtered');
    await page.getByLabel('Status').selectOption('failed');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.getByText('No purge tasks match').waitFor(WAIT);

    await page.getByRole('link', { name: 'Quota' }).click();
    await page.getByRole('row', { name: /purge_prefix/ }).waitFor(WAIT);
    await shot(page, '6-quota');
    await page.getByRole('link', { name: 'Fleet' }).click();
    const fleetRow = page.getByRole('row', { name: /edge-1/ });
    await fleetRow.filter({ hasText: 'connected' }).filter({ hasText: 'fresh' }).waitFor(WAIT);
    await shot(page, '7-fleet');
    // The fleet page follows the node live (SSE, no reload, no polling): a purge moves its applied seq.
    const applied = async () => Number(((await fleetRow.locator('td.num').textContent()) ?? '').replace(/\D/g, ''));
    const before = await applied();
    await page.evaluate(() => ((globalThis as unknown as { stayedPut: string }).stayedPut = 'fleet'));
    const purge = await fleet.cli(['purge', 'url', `http://${ACME.host}/fleet-live`, '--zone', ACME.zoneId]);
    assert.equal(purge.code, 0, purge.stderr);
    await page.waitForFunction(
      (seq) => {
        const doc = (globalThis as unknown as { document: { querySelector(q: string): { textContent: string | null } | null } }).document;
        return Number((doc.querySelector('#fleet tbody tr td.num')?.textContent ?? '').replace(/\D/g, '')) > seq;
      },
      before,
      WAIT,
    );
    assert.ok((await applied()) > before, 'the applied seq moved');
    assert.equal(await page.evaluate(() => (globalThis as unknown as { stayedPut?: string }).stayedPut), 'fleet', 'the fleet page updated without reloading');
    assert.ok(streams.some((u) => u.endsWith('/console/fleet/events')), `the fleet page listened to its event stream: ${streams.join(', ')}`);

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByText('Signed out.').waitFor(WAIT);
    await page.goto(jobUrl.href);
    await page.getByRole('button', { name: 'Sign in' }).waitFor(WAIT);
    await shot(page, '8-signed-out');

    // Another account: no such job, not even by its URL, and nothing in its history.
    const other = await (await browser.newContext()).newPage();
    await signIn(other, fleet.url, GLOBEX);
    await other.getByLabel('Target').fill('console-e2e');
    await other.getByLabel('contains').check();
    await other.getByRole('button', { name: 'Filter' }).click();
    await other.getByText('No purge tasks match').waitFor(WAIT);
    await other.goto(jobUrl.href);
    await other.getByRole('heading', { name: 'No such job' }).waitFor(WAIT);
    assert.doesNotMatch((await other.content()) ?? '', /console-e2e/);
    await shot(other, '9-other-account');
    assert.deepEqual(problems, [], 'no script errors or CSP violations in the browser console');
  } catch (e) {
    await shot(page, 'failure').catch(() => {});
    throw e;
  }
});
