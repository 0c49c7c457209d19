// athens-http/tests/search-page-check.js — run by api-check.sh: opens the search page at BASE_URL/
// in headless Chromium and uses it as a person would: types a query with a typo key by key, checks
// the highlighted results with their creators, clicks a hashtag facet and checks that every result
// shown carries it and that the count matches the facet's, pages forward, then checks the empty
// state (with "did you mean") and the error state (the API answering 503). Saves a screenshot of
// the faceted results. Environment: BASE_URL, SCREENSHOT; NODE_PATH must reach playwright-core.
'use strict';

const { chromium } = require('playwright-core');

const base = process.env.BASE_URL;
const screenshot = process.env.SCREENSHOT;
const TYPO = 'elasticsaerch sync'; // "elasticsearch" with two letters swapped
const EXPECTED = 'elasticsearch-sync';

const failures = [];
function check(ok, message) {
  if (!ok) failures.push(message);
}

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-dev-shm-usage'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.setDefaultTimeout(15000);
    const errors = [];
    page.on('pageerror', (error) => errors.push(String(error)));
    page.on('console', (message) => {
      if (message.type() === 'error' && !/status of 503/.test(message.text())) {
        errors.push(message.text());
      }
    });
    const offsite = [];
    page.on('request', (request) => {
      if (!request.url().startsWith(base)) offsite.push(request.url());
    });

    await page.goto(`${base}/`, { waitUntil: 'load' });
    await page.locator('#hits .hit').first().waitFor(); // every project, newest first

    // 1. Typing a query with a typo, key by key: results follow, highlighted, with creators.
    const searched = page.waitForResponse((r) =>
      r.url().includes('/v1/projects/search') && r.url().includes('sync'));
    const suggested = page.waitForResponse((r) => r.url().includes('/v1/suggestions'));
    await page.locator('#q').pressSequentially(TYPO, { delay: 30 });
    await searched;
    await suggested;
    await page.waitForFunction(
      (slug) => document.querySelector('#hits .hit .slug')?.textContent === slug, EXPECTED);
    const first = page.locator('#hits .hit').first();
    const marks = await first.locator('mark').allInnerTexts();
    check(marks.some((m) => /elasticsearch/i.test(m)),
      `the first result highlights no match of "elasticsearch": marks ${JSON.stringify(marks)}`);
    const creators = await first.locator('.creators').innerText();
    check(/^by \S/.test(creators), `the first result shows no creator: "${creators}"`);
    check(new URL(page.url()).searchParams.get('q') === TYPO, `the address keeps no query: ${page.url()}`);

    // 2. Clicking a hashtag facet: the filter shows, every result carries the hashtag, the total
    //    equals the facet's count.
    const facet = page.locator('#hashtag-facets button').first();
    const label = (await facet.locator('.label').innerText()).trim(); // "#rust"
    const count = Number((await facet.locator('.count').innerText()).trim());
    check(label.startsWith('#') && count > 0, `odd facet "${label}" (${count})`);
    const filtered = page.waitForResponse((r) =>
      r.url().includes('/v1/projects/search') && r.url().includes('hashtags='));
    await facet.click();
    await filtered;
    await page.locator('#chips button', { hasText: label }).waitFor();
    await page.waitForFunction(
      (c) => document.querySelector('#status').textContent.startsWith(`${c.toLocaleString('en')} project`),
      count);
    const tagsPerHit = await page.locator('#hits .hit').evaluateAll((hits) =>
      hits.map((hit) => [...hit.querySelectorAll('.tags button')].map((b) => b.textContent.toLowerCase())));
    check(tagsPerHit.length > 0, 'no result after clicking the facet');
    check(tagsPerHit.every((tags) => tags.includes(label.toLowerCase())),
      `a result lacks ${label}: ${JSON.stringify(tagsPerHit)}`);
    check(await page.locator('#hashtag-facets button[aria-pressed="true"]').count() === 1,
      'the clicked facet is not shown as pressed');
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: screenshot, fullPage: false });

    // 3. Paging: clearing the filters and the text lists every project, ten a page.
    const everything = page.waitForResponse((r) => r.url().includes('/v1/projects/search') &&
      !r.url().includes('q=') && !r.url().includes('hashtags='));
    await page.locator('#clear').click();
    await page.locator('#q').fill('');
    await page.locator('#q').press('Enter');
    const total = (await (await everything).json()).total;
    await page.waitForFunction(
      (t) => document.querySelector('#status').textContent.startsWith(`${t.toLocaleString('en')} project`),
      total);
    await page.locator('#pager').waitFor();
    const page1 = await page.locator('#hits .hit .slug').allInnerTexts();
    await page.locator('#next').click();
    await page.waitForFunction(() => document.querySelector('#page-number').textContent === 'Page 2');
    await page.waitForFunction((firstSlug) =>
      document.querySelector('#hits .hit .slug')?.textContent !== firstSlug, page1[0]);
    const page2 = await page.locator('#hits .hit .slug').allInnerTexts();
    check(page1.length === 10 && page2.length > 0 && !page2.some((s) => page1.includes(s)),
      `page 2 repeats page 1: ${JSON.stringify([page1, page2])}`);

    // 4. Empty state, with the API's correction offered: a five-letter word two edits from "fuzzy"
    //    (the search tolerates one edit in words that short, the correction two).
    await page.locator('#q').fill('fizzi');
    await page.locator('#q').press('Enter');
    await page.locator('#empty').waitFor();
    const emptyText = await page.locator('#empty').innerText();
    check(emptyText.includes('No project matches'), `empty state says "${emptyText}"`);
    if (await page.locator('#did-you-mean').isVisible()) {
      const correction = await page.locator('#did-you-mean-link').innerText();
      await page.locator('#did-you-mean-link').click();
      await page.locator('#hits .hit').first().waitFor();
      check((await page.locator('#q').inputValue()) === correction, 'did-you-mean did not search');
    } else {
      failures.push('no "did you mean" offered for "fizzi"');
    }

    // 5. Error state: the API answering 503 is said in words, not as an empty page.
    await page.route('**/v1/projects/search**', (route) => route.fulfill({
      status: 503,
      contentType: 'application/problem+json',
      headers: { 'retry-after': '1' },
      body: JSON.stringify({ type: 'urn:athens:problem:unavailable', title: 'Service unavailable',
        status: 503, detail: 'the search index is unavailable, retry later' }),
    }));
    await page.locator('#q').fill('anything');
    await page.locator('#q').press('Enter');
    await page.locator('#error').waitFor();
    const errorText = await page.locator('#error').innerText();
    check(/unavailable/.test(errorText), `error state says "${errorText}"`);
    check(await page.locator('#hits .hit').count() === 0, 'results stay shown beside the error');

    check(offsite.length === 0, `the page fetched from elsewhere: ${offsite.join(', ')}`);
    check(errors.length === 0, `page errors: ${errors.join('; ')}`);
    console.error(`[search-page] "${TYPO}" → ${EXPECTED} first; ${label} → ${count} projects; ` +
      'paging, empty and error states shown');
  } catch (error) {
    failures.push(String(error && error.stack ? error.stack : error));
  } finally {
    await browser.close();
  }
  for (const failure of failures) console.error(`[search-page] ERROR: ${failure}`);
  process.exitCode = failures.length ? 1 : 0;
})();
