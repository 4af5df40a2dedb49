// The security headers on the page, its assets and an API answer; static files without a
// token, data never; the page holds no inline script or style and the browser enforces the CSP.

import { apiResponse, env, eventually, log, open, scenario, waitForView } from './lib.mjs';

const URL = env('FLOTILLA_URL');
const CSP = ["default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:",
  "connect-src 'self'", "object-src 'none'", "base-uri 'none'", "form-action 'self'",
  "frame-ancestors 'none'"];

function expectHeaders(response, where) {
  const h = response.headers;
  const csp = (h.get('content-security-policy') || '').split(';').map((d) => d.trim()).filter(Boolean);
  for (const directive of CSP) {
    if (!csp.includes(directive)) throw new Error(`${where}: CSP lacks "${directive}": ${csp.join('; ')}`);
  }
  if (csp.some((d) => /unsafe-inline|unsafe-eval|\*/.test(d))) throw new Error(`${where}: a loose CSP: ${csp.join('; ')}`);
  const expected = { 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer', 'x-frame-options': 'DENY' };
  for (const [name, value] of Object.entries(expected)) {
    if (h.get(name) !== value) throw new Error(`${where}: ${name} is ${h.get(name)}, not ${value}`);
  }
}

await scenario('headers', async ({ newPage }) => {
  // The page and its routes: no token needed.
  const index = await fetch(`${URL}/`);
  if (index.status !== 200 || !index.headers.get('content-type')?.startsWith('text/html')) {
    throw new Error(`/: ${index.status} ${index.headers.get('content-type')}`);
  }
  expectHeaders(index, '/');
  const html = await index.text();
  for (const route of ['/hosts', '/vms', '/plan', '/runs', '/runs/1', '/events', '/vms?q=web&sort=-cpu']) {
    const r = await fetch(`${URL}${route}`);
    if (r.status !== 200 || (await r.text()) !== html) throw new Error(`${route}: ${r.status}, not index.html`);
    expectHeaders(r, route);
  }
  // No inline script, style element, style attribute or event handler in the HTML.
  const inline = [/<script(?![^>]*\bsrc=)[^>]*>/i, /<style[\s>]/i, /\sstyle\s*=/i, /\son[a-z]+\s*=/i]
    .filter((re) => re.test(html));
  if (inline.length) throw new Error(`index.html has inline code or style: ${inline.join(', ')}`);
  // Every asset it loads, with its type and the headers.
  const assets = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]);
  if (!assets.length) throw new Error('index.html loads no /assets/ file');
  const types = { js: 'text/javascript', css: 'text/css', svg: 'image/svg+xml' };
  for (const asset of assets) {
    const r = await fetch(`${URL}${asset}`);
    const type = types[asset.split('.').pop()];
    if (r.status !== 200) throw new Error(`${asset}: ${r.status}`);
    if (type && !r.headers.get('content-type')?.startsWith(type)) {
      throw new Error(`${asset}: Content-Type ${r.headers.get('content-type')}, not ${type}`);
    }
    expectHeaders(r, asset);
  }
  log(`/, 7 routes and ${assets.length} assets without a token, with the headers`);

  // Data needs the token: none and a wrong one get 401 JSON (with the headers too).
  for (const path of ['/api/v1/status', '/api/v1/vms', '/api/v1/events', '/api/v1/events/stream', '/api/v1/changes']) {
    for (const token of ['', 'wrong-token']) {
      const r = await apiResponse(path, { token });
      const body = await r.text();
      if (r.status !== 401) throw new Error(`${path} with token "${token}": ${r.status}`);
      if (!JSON.parse(body).error) throw new Error(`${path}: 401 without {"error"}: ${body}`);
      expectHeaders(r, `${path} (401)`);
    }
  }
  const vms = await apiResponse('/api/v1/vms');
  if (vms.status !== 200) throw new Error(`/api/v1/vms with the token: ${vms.status}`);
  expectHeaders(vms, '/api/v1/vms');
  log('data only with the token; the API answers carry the headers');

  // The browser enforces the policy: an injected inline script does not run.
  const page = await newPage();
  await open(page, '/', 'overview');
  const ran = await page.evaluate(() => {
    const script = document.createElement('script');
    script.textContent = 'window.__inlineRan = true;';
    document.head.append(script);
    return window.__inlineRan === true;
  });
  if (ran) throw new Error('an inline script ran: the CSP is not enforced');
  if (!page.problems.some((p) => /Content Security Policy/i.test(p))) {
    throw new Error(`the blocked inline script was not reported as a CSP violation: ${page.problems.join('; ')}`);
  }
  await waitForView(page, 'overview');
  log('the browser enforces the CSP');

  // A view's ETag: the page's API client sends If-None-Match, a 304 has no body, and the page
  // reuses what it parsed. (A pass in between publishes a new snapshot: then it tries again.)
  const answers = [];
  page.on('response', (r) => {
    if (r.url().endsWith('/api/v1/hosts')) {
      answers.push({ status: r.status(), sent: r.request().headers()['if-none-match'] || '' });
    }
  });
  await eventually('a 304 for /api/v1/hosts', async () => {
    answers.length = 0;
    const same = await page.evaluate(async () => {
      const api = await import('/assets/api.js');
      const first = await api.getJson('/api/v1/hosts');
      const second = await api.getJson('/api/v1/hosts');
      return first === second;
    });
    const hit = answers.find((a) => a.status === 304);
    if (hit && !hit.sent.startsWith('"')) throw new Error(`a 304 without If-None-Match: ${JSON.stringify(answers)}`);
    return hit && same;
  });
  log('/api/v1/hosts: If-None-Match sent by the page, 304 answered, the parsed body reused');
});
