// athens-http/tests/swagger-ui-check.js — run by api-check.sh: opens Swagger UI in headless
// Chromium, runs "Projects that use hashtags" with "Try it out" → "Execute", checks that the live
// response is a 200 listing projects, and saves a screenshot.
// Environment: BASE_URL, HASHTAG, SCREENSHOT; NODE_PATH must reach playwright-core.
'use strict';

const { chromium } = require('playwright-core');

const base = process.env.BASE_URL;
const hashtag = process.env.HASHTAG || 'rust';
const screenshot = process.env.SCREENSHOT;
const operation = '#operations-Projects-listHashtagProjects';

function fail(message) {
  console.error(`[swagger-ui] ERROR: ${message}`);
  process.exitCode = 1;
}

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
    ],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    page.setDefaultTimeout(20000);
    const errors = [];
    page.on('pageerror', (error) => errors.push(String(error)));

    await page.goto(`${base}/docs`, { waitUntil: 'load' });
    await page.waitForSelector(operation);
    const block = page.locator(operation);
    await block.locator('.opblock-summary').first().click();
    await block.locator('.try-out__btn').click();

    // The hashtags array comes prefilled with its examples: keep one item, the hashtag asked.
    const row = block.locator('tr[data-param-name="hashtags"]');
    const items = row.locator('input[type="text"]');
    await items.first().waitFor();
    while ((await items.count()) > 1) {
      await row.locator('.json-schema-form-item-remove').last().click();
    }
    await items.first().fill(hashtag);

    const answered = page.waitForResponse((response) =>
      response.url().includes('/v1/hashtags/projects'),
    );
    await block.locator('button.execute').click();
    const response = await answered;
    const body = await response.json();

    // Wait until Swagger UI renders the live response, then check what a person sees.
    const live = block.locator('.live-responses-table');
    await live.waitFor();
    const row200 = live.locator('tbody tr.response').first();
    await row200.waitFor();
    const status = (await row200.locator('.response-col_status').innerText()).trim();
    const shown = await row200.locator('.response-col_description').innerText();
    // The operation from its summary to the live response: the parameters as filled, the request
    // and what came back.
    await page.evaluate(() => window.scrollTo(0, 0)); // boxes are then page coordinates
    const top = await block.boundingBox();
    const end = await live.boundingBox();
    await page.screenshot({
      path: screenshot,
      fullPage: true,
      clip: { x: top.x, y: top.y, width: top.width, height: end.y + end.height - top.y + 8 },
    });

    if (response.status() !== 200) fail(`the API answered ${response.status()}`);
    if (status !== '200') fail(`Swagger UI shows status ${status}`);
    if (!Array.isArray(body.items) || body.items.length === 0) {
      fail(`no project uses #${hashtag}: ${JSON.stringify(body).slice(0, 300)}`);
    } else {
      const slug = body.items[0].project.slug;
      if (!shown.includes(slug)) fail(`Swagger UI does not show the first project (${slug})`);
      console.error(
        `[swagger-ui] ${body.total} projects use #${hashtag}; Swagger UI shows ${slug} first`,
      );
    }
    if (errors.length) fail(`page errors: ${errors.join('; ')}`);
  } catch (error) {
    fail(String(error && error.stack ? error.stack : error));
  } finally {
    await browser.close();
  }
})();
