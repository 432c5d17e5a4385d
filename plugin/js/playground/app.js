// The Gateward playground: the core (plugin/js, wasm-bindgen) checks a token and a request
// against a config and a Rego policy, all in this page. Tokens are signed here with a throwaway
// WebCrypto key (development only) whose public JWK goes into the config's inline `jwks`.

import init, { check, inspect, validateConfig } from './pkg/gateward_js.js';

const $ = (id) => document.getElementById(id);
const enc = new TextEncoder();

const state = {
  examples: [],
  presets: [],
  modules: [], // [{name, rego}]
  tab: 'rego:0', // 'rego:<i>' | 'data' | 'config'
  coverage: new Map(), // module name -> {covered: Set, notCovered: Set}
  keys: {}, // alg -> {kid, privateKey, jwk}
  entryPackage: 'data.gateward',
  example: '',
  run: 0,
  signSeq: 0,
};

// ---------- helpers ----------

function b64url(bytes) {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function pretty(v) {
  return JSON.stringify(v, null, 2);
}

function debounce(fn, ms) {
  let t;
  return (...a) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...a), ms);
  };
}

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c);
  return e;
}

/** Parses JSON from a textarea, marking it bad and returning {error} on failure. */
function readJson(area, what) {
  const text = area.value.trim();
  if (!text) {
    area.classList.remove('bad');
    return { value: undefined };
  }
  try {
    const value = JSON.parse(text);
    area.classList.remove('bad');
    return { value };
  } catch (e) {
    area.classList.add('bad');
    return { error: { path: what, message: `not JSON: ${e.message}` } };
  }
}

// ---------- the throwaway key ----------

async function devKey(alg) {
  if (state.keys[alg]) return state.keys[alg];
  const params =
    alg === 'ES256'
      ? { name: 'ECDSA', namedCurve: 'P-256' }
      : { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' };
  // The private key is not extractable: it never leaves this page.
  const pair = await crypto.subtle.generateKey(params, false, ['sign', 'verify']);
  const pub = await crypto.subtle.exportKey('jwk', pair.publicKey);
  const tag = b64url(crypto.getRandomValues(new Uint8Array(4)));
  const kid = `playground-dev-${alg.toLowerCase()}-${tag}`;
  const jwk =
    alg === 'ES256'
      ? { kty: 'EC', crv: 'P-256', x: pub.x, y: pub.y }
      : { kty: 'RSA', n: pub.n, e: pub.e };
  Object.assign(jwk, { kid, alg, use: 'sig' });
  state.keys[alg] = { kid, privateKey: pair.privateKey, jwk };
  return state.keys[alg];
}

async function signToken(alg, claims) {
  const key = await devKey(alg);
  const part = (obj) => b64url(enc.encode(JSON.stringify(obj)));
  const input = `${part({ alg, typ: 'JWT', kid: key.kid })}.${part(claims)}`;
  const params = alg === 'ES256' ? { name: 'ECDSA', hash: 'SHA-256' } : { name: 'RSASSA-PKCS1-v1_5' };
  // WebCrypto's ECDSA signature is r || s, exactly the JWS form.
  const sig = await crypto.subtle.sign(params, key.privateKey, enc.encode(input));
  return `${input}.${b64url(new Uint8Array(sig))}`;
}

/** Puts the page key's JWK on the config issuer that trusts `iss` (keys must be inline here). */
function trustDevKey(iss, jwk) {
  const area = $('config');
  const { value: cfg, error } = readJson(area, 'config');
  if (error || !cfg || !Array.isArray(cfg.issuers) || cfg.issuers.length === 0) return;
  // validateConfig resolves preset issuers (e.g. github-actions' default iss); the policy is
  // left out, its modules live in the Rego tabs.
  const { policy, ...issuersOnly } = cfg;
  const summary = validateConfig(pretty(issuersOnly));
  let i = (summary.issuers || []).findIndex((s) => s.issuer === iss);
  if (i >= 0) i = cfg.issuers.findIndex((c) => c && c.name === summary.issuers[i].name);
  if (i < 0) i = cfg.issuers.findIndex((c) => c && c.issuer === iss);
  if (i < 0) {
    setNote(`no issuer in the config trusts iss ${JSON.stringify(iss)}: the token will be issuer_untrusted`);
    return;
  }
  const issuer = cfg.issuers[i];
  const keys = issuer.jwks && Array.isArray(issuer.jwks.keys) ? issuer.jwks.keys : [];
  if (keys.some((k) => k && k.kid === jwk.kid) && !issuer.jwks_uri && !issuer.discovery) return;
  delete issuer.jwks_uri;
  delete issuer.discovery;
  delete issuer.pem_keys;
  issuer.jwks = { keys: [...keys.filter((k) => !(k && String(k.kid).startsWith('playground-dev-'))), jwk] };
  area.value = pretty(cfg);
  setNote(`issuer ${issuer.name} trusts the page's development key ${jwk.kid}`);
}

function setNote(text) {
  $('key-note').textContent = text;
}

// ---------- editors ----------

function renderTabs() {
  const tabs = $('editor-tabs');
  tabs.replaceChildren();
  state.modules.forEach((m, i) => {
    const cov = state.coverage.get(m.name);
    const b = el('button', { type: 'button', textContent: m.name, dataset: { tab: `rego:${i}` } });
    if (cov && cov.covered.size) b.append(el('span', { class: 'count', textContent: `${cov.covered.size}` }));
    tabs.append(b);
  });
  tabs.append(el('button', { type: 'button', textContent: '+ module', title: 'Add a Rego module', dataset: { tab: 'add' } }));
  tabs.append(el('span', { class: 'sep' }));
  tabs.append(el('button', { type: 'button', textContent: 'data', dataset: { tab: 'data' } }));
  tabs.append(el('button', { type: 'button', textContent: 'config', dataset: { tab: 'config' } }));
  for (const b of tabs.querySelectorAll('button')) b.classList.toggle('active', b.dataset.tab === state.tab);
}

function showTab(tab) {
  if (tab === 'add') {
    const name = `policy-${state.modules.length + 1}.rego`;
    state.modules.push({ name, rego: 'package gateward\n\nimport rego.v1\n\n' });
    tab = `rego:${state.modules.length - 1}`;
  }
  state.tab = tab;
  const rego = tab.startsWith('rego:');
  $('rego-pane').hidden = !rego;
  $('data-pane').hidden = tab !== 'data';
  $('config-pane').hidden = tab !== 'config';
  if (rego) {
    const m = state.modules[Number(tab.slice(5))];
    $('rego').value = m ? m.rego : '';
    paintRego();
    $('rego').scrollTop = 0;
  }
  renderTabs();
}

function currentModule() {
  return state.tab.startsWith('rego:') ? state.modules[Number(state.tab.slice(5))] : undefined;
}

/** Redraws the gutter and the per-line coverage backgrounds behind the Rego textarea. */
function paintRego() {
  const m = currentModule();
  const lines = $('rego').value.split('\n');
  const cov = m && state.coverage.get(m.name);
  const hl = $('rego-hl');
  const gutter = $('rego-gutter');
  const rows = [];
  const nums = [];
  lines.forEach((text, i) => {
    const n = i + 1;
    const cls = cov ? (cov.covered.has(n) ? 'covered' : cov.notCovered.has(n) ? 'not-covered' : '') : '';
    rows.push(el('div', { class: cls, textContent: text || ' ' }));
    nums.push(el('div', { textContent: String(n) }));
  });
  hl.replaceChildren(...rows);
  gutter.replaceChildren(...nums);
  syncScroll();
}

function syncScroll() {
  const t = $('rego');
  $('rego-hl').scrollTop = t.scrollTop;
  $('rego-hl').scrollLeft = t.scrollLeft;
  $('rego-gutter').scrollTop = t.scrollTop;
}

// ---------- examples and presets ----------

function setNow(n) {
  $('now').value = String(n);
  showNow();
}

function showNow() {
  const n = Number($('now').value);
  $('now-text').textContent = Number.isFinite(n) ? new Date(n * 1000).toISOString() : '';
}

function withTimes(claims, now) {
  const c = structuredClone(claims);
  for (const t of ['iat', 'nbf', 'exp']) if (typeof c[t] === 'number') c[t] += now;
  return c;
}

function headersText(headers) {
  return Object.entries(headers || {})
    .map(([k, v]) => `${k}: ${v}`)
    .join('\n');
}

async function loadExample(id) {
  const ex = state.examples.find((e) => e.id === id);
  if (!ex) return;
  state.example = id;
  state.modules = ex.modules.map((m) => ({ name: m.name, rego: m.rego }));
  state.coverage = new Map();
  $('data').value = pretty(ex.data);
  $('config').value = pretty(ex.config);
  $('claims').value = pretty(ex.claims);
  $('alg').value = ex.alg;
  const preset = ex.config.issuers?.[0]?.preset;
  if (state.presets.some((p) => p.name === preset)) $('preset').value = preset;
  $('method').value = ex.request.method;
  $('path').value = ex.request.path;
  $('headers').value = headersText(ex.request.headers);
  setNow(ex.now);
  setMode('generate');
  // The example's own entrypoint module, not the shared helpers, is the interesting one.
  showTab(`rego:${state.modules.length - 1}`);
  await signAndRun();
}

async function loadPreset() {
  const p = state.presets.find((x) => x.name === $('preset').value);
  if (!p) return;
  const now = Number($('now').value) || Math.floor(Date.now() / 1000);
  $('claims').value = pretty(withTimes(p.claims, now));
  $('alg').value = p.alg;
  const { value: cfg } = readJson($('config'), 'config');
  const config = cfg && typeof cfg === 'object' ? cfg : {};
  config.issuers = [structuredClone(p.issuer)];
  $('config').value = pretty(config);
  state.example = '';
  $('example').value = '';
  setMode('generate');
  await signAndRun();
}

// ---------- token ----------

function mode() {
  return document.querySelector('input[name="mode"]:checked').value;
}

function setMode(m) {
  for (const r of document.querySelectorAll('input[name="mode"]')) r.checked = r.value === m;
  const generate = m === 'generate';
  $('generate-opts').hidden = !generate;
  $('claims-field').hidden = !generate;
  $('token').readOnly = generate;
  $('inspect').hidden = generate;
  if (!generate) showInspect();
}

function showInspect() {
  const out = $('inspect');
  const token = $('token').value.trim();
  if (!token) {
    out.replaceChildren(el('span', { class: 'hint', textContent: 'Paste a compact JWS (header.payload.signature).' }));
    return;
  }
  const r = inspect(token);
  if (r.error) {
    out.replaceChildren(el('div', { class: 'warn', textContent: r.error }));
    return;
  }
  out.replaceChildren(
    el('div', { class: 'warn', textContent: r.warning }),
    el('pre', { textContent: `header ${pretty(r.header)}\nclaims ${pretty(r.claims)}` }),
  );
}

/** Signs the claims with the page key (generate mode), then checks. */
async function signAndRun() {
  if (mode() === 'generate') {
    const seq = ++state.signSeq;
    const { value: claims, error } = readJson($('claims'), 'claims');
    if (error || !claims || typeof claims !== 'object' || Array.isArray(claims)) {
      render({ decision: 'error', errors: [error || { path: 'claims', message: 'must be a JSON object' }] });
      return;
    }
    const alg = $('alg').value;
    let token;
    try {
      token = await signToken(alg, claims);
    } catch (e) {
      render({ decision: 'error', errors: [{ path: 'key', message: `WebCrypto could not sign: ${e.message}` }] });
      return;
    }
    if (seq !== state.signSeq) return; // a newer edit is being signed
    $('token').value = token;
    trustDevKey(claims.iss, state.keys[alg].jwk);
  }
  runCheck();
}

// ---------- check ----------

function parseHeaders(text) {
  const headers = [];
  const errors = [];
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    const at = line.indexOf(':');
    if (at <= 0) {
      errors.push({ path: `request.headers line ${i + 1}`, message: 'expected "name: value"' });
      return;
    }
    headers.push([line.slice(0, at).trim(), line.slice(at + 1).trim()]);
  });
  return { headers, errors };
}

function composedConfig(errors) {
  const { value: cfg, error } = readJson($('config'), 'config');
  if (error) errors.push(error);
  const { value: data, error: dataError } = readJson($('data'), 'policy.data');
  if (dataError) errors.push(dataError);
  if (errors.length) return undefined;
  if (cfg && cfg.policy && typeof cfg.policy === 'object') {
    const entry = typeof cfg.policy.entrypoint === 'string' ? cfg.policy.entrypoint : 'data.gateward.decision';
    state.entryPackage = entry.slice(0, entry.lastIndexOf('.'));
    if (state.modules.length) cfg.policy.modules = state.modules.map((m) => ({ name: m.name, rego: m.rego }));
    if (data !== undefined) cfg.policy.data = data;
  }
  return cfg;
}

function runCheck() {
  const errors = [];
  const config = composedConfig(errors);
  const { headers, errors: headerErrors } = parseHeaders($('headers').value);
  errors.push(...headerErrors);
  const now = Number($('now').value);
  if (!Number.isInteger(now)) errors.push({ path: 'now', message: 'must be whole Unix seconds' });
  if (errors.length) {
    render({ decision: 'error', errors });
    return;
  }
  const request = { method: $('method').value.trim(), path: $('path').value.trim(), headers };
  let result;
  try {
    result = check(config === undefined ? '' : config, $('token').value.trim(), request, now);
  } catch (e) {
    result = { decision: 'error', errors: [{ path: 'core', message: `internal error: ${e.message}` }] };
  }
  render(result);
  summarizeConfig(config);
}

function summarizeConfig(config) {
  if (config === undefined) return;
  const v = validateConfig(config);
  const out = $('config-summary');
  if (!v.valid) {
    out.textContent = 'invalid (see the errors beside the decision)';
    return;
  }
  const issuers = v.issuers.map((i) => {
    const keys = i.keys.inline !== undefined ? `${i.keys.inline} inline key(s)` : 'remote keys (not fetched here)';
    return `${i.name}: ${i.issuer} (${i.algorithms.join(', ')}; ${keys})`;
  });
  const policy = v.policy ? `policy: ${v.policy.entrypoint}` : 'no policy: every verified token is allowed';
  out.textContent = `${issuers.join(' · ')} · ${policy}`;
}

// ---------- results ----------

function render(r) {
  state.run += 1;
  const box = $('decision');
  const errs = $('errors');
  box.dataset.decision = r.decision || 'error';
  box.dataset.code = r.code || '';
  box.dataset.example = state.example;
  box.dataset.run = String(state.run);
  errs.replaceChildren();
  errs.hidden = true;

  if (r.decision === 'allow') {
    $('verdict').replaceChildren('ALLOW', el('code', { textContent: String(r.status) }));
    $('message').textContent = r.reason || `issuer ${r.issuer}, subject ${r.subject ?? '(none)'}`;
  } else if (r.decision === 'deny') {
    $('verdict').replaceChildren('DENY', el('code', { textContent: `${r.status} ${r.code}` }));
    $('message').textContent = r.message;
  } else {
    $('verdict').replaceChildren('ERROR', el('code', { textContent: 'fix the inputs' }));
    $('message').textContent = 'The core did not run: the inputs below are invalid.';
    for (const e of r.errors || []) errs.append(el('li', {}, el('code', { textContent: e.path }), `: ${e.message}`));
    errs.hidden = false;
  }
  if (r.mode === 'report' && r.decision === 'deny') {
    $('message').textContent += ' (mode report: a front end would log this and let the request through)';
  }

  renderRules(r.rules || []);
  $('claims-out').textContent = r.claims ? pretty(r.claims) : 'No verified claims: the token was refused before the policy ran.';
  $('input-out').textContent = r.input ? pretty(r.input) : 'The policy did not run.';
  $('response-out').textContent = responseText(r);
  renderNotes(r);

  state.coverage = new Map(
    (r.coverage || []).map((c) => [c.module, { covered: new Set(c.covered), notCovered: new Set(c.not_covered) }]),
  );
  if (state.tab.startsWith('rego:')) paintRego();
  renderTabs();
}

/** The entrypoint's package first (where the decision is made), then the helpers. */
function ordered(rules) {
  const pkgOf = (r) => r.path.slice(0, r.path.lastIndexOf('.'));
  const first = rules.filter((r) => pkgOf(r) === state.entryPackage);
  return [...first, ...rules.filter((r) => pkgOf(r) !== state.entryPackage)];
}

function renderRules(rules) {
  const body = $('rules');
  const onlyTrue = $('only-true').checked;
  const rows = [];
  let pkg = '';
  for (const rule of ordered(rules)) {
    const isTrue = rule.value === true;
    if (onlyTrue && !isTrue) continue;
    const dot = rule.path.lastIndexOf('.');
    const p = rule.path.slice(0, dot);
    if (p !== pkg) {
      pkg = p;
      rows.push(el('tr', { class: 'pkg-head' }, el('td', { colSpan: 2, textContent: p })));
    }
    const full = JSON.stringify(rule.value);
    const value = full.length > 160 ? `${full.slice(0, 160)}…` : full;
    const cls = isTrue ? 'rule-true' : rule.value === false ? 'rule-false' : 'rule-value';
    rows.push(
      el(
        'tr',
        { class: cls, dataset: { path: rule.path } },
        el('td', { class: 'path', textContent: rule.path.slice(dot + 1) }),
        el('td', { class: 'value', textContent: value, title: full.length > 160 ? full.slice(0, 4000) : '' }),
      ),
    );
  }
  if (!rows.length) {
    rows.push(el('tr', {}, el('td', { class: 'hint', textContent: rules.length ? 'No rule is true.' : 'No rule values: the policy did not run.' })));
  }
  body.replaceChildren(...rows);
  state.lastRules = rules;
}

function responseText(r) {
  if (r.decision === 'allow') {
    return pretty({
      upstream: {
        set_headers: r.headers,
        remove_headers: r.remove_headers,
        strip_token: r.strip_token,
      },
      issuer: r.issuer,
      subject: r.subject,
      jti: r.jti,
      expires_at: r.expires_at,
    });
  }
  if (r.decision === 'deny') {
    const headers = { ...(r.response_headers || {}) };
    if (r.www_authenticate) headers['www-authenticate'] = r.www_authenticate;
    headers['content-type'] = 'application/json';
    return `HTTP ${r.status}\n${Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}`)
      .join('\n')}\n\n${pretty({ code: r.code, message: r.message })}`;
  }
  return '';
}

function renderNotes(r) {
  const out = $('notes-out');
  const section = (title, items) => [
    el('h3', { textContent: title }),
    items.length ? el('ul', {}, ...items.map((i) => el('li', { textContent: i }))) : el('div', { class: 'hint', textContent: 'none' }),
  ];
  out.replaceChildren(el('div', { class: 'notes' }, ...section('print()', r.prints || []), ...section('Config warnings', r.warnings || [])));
}

// ---------- wiring ----------

function wire() {
  const rerun = debounce(runCheck, 150);
  const resign = debounce(signAndRun, 150);

  $('example').addEventListener('change', () => loadExample($('example').value));
  $('load-preset').addEventListener('click', loadPreset);
  $('alg').addEventListener('change', signAndRun);
  $('claims').addEventListener('input', resign);
  $('token').addEventListener('input', () => {
    showInspect();
    rerun();
  });
  for (const r of document.querySelectorAll('input[name="mode"]')) {
    r.addEventListener('change', () => {
      setMode(mode());
      signAndRun();
    });
  }
  for (const id of ['method', 'path', 'headers', 'data', 'config']) $(id).addEventListener('input', rerun);
  $('now').addEventListener('input', () => {
    showNow();
    rerun();
  });
  $('now-btn').addEventListener('click', () => {
    setNow(Math.floor(Date.now() / 1000));
    runCheck();
  });
  $('rego').addEventListener('input', () => {
    const m = currentModule();
    if (m) m.rego = $('rego').value;
    // Coverage belongs to the text it was computed for.
    if (m) state.coverage.delete(m.name);
    paintRego();
    rerun();
  });
  $('rego').addEventListener('scroll', syncScroll);
  $('rego').addEventListener('keydown', (e) => {
    if (e.key === 'Tab' && !e.shiftKey) {
      e.preventDefault();
      document.execCommand('insertText', false, '\t');
    }
  });
  $('editor-tabs').addEventListener('click', (e) => {
    const b = e.target.closest('button');
    if (b) showTab(b.dataset.tab);
  });
  $('result-tabs').addEventListener('click', (e) => {
    const b = e.target.closest('button');
    if (!b) return;
    for (const x of $('result-tabs').querySelectorAll('button')) x.classList.toggle('active', x === b);
    for (const p of document.querySelectorAll('.result-pane')) p.hidden = p.dataset.pane !== b.dataset.tab;
  });
  $('only-true').addEventListener('change', () => renderRules(state.lastRules || []));
}

async function main() {
  const status = $('status');
  try {
    await init();
    const res = await fetch('examples.json');
    if (!res.ok) throw new Error(`examples.json: HTTP ${res.status}`);
    const doc = await res.json();
    state.examples = doc.examples;
    state.presets = doc.presets;
  } catch (e) {
    status.textContent = `failed to load: ${e.message}`;
    return;
  }
  const select = $('example');
  select.replaceChildren(el('option', { value: '', textContent: '(your own)' }));
  const groups = new Map();
  for (const ex of state.examples) {
    const group = ex.expect === 'allow' ? 'Allowed' : 'Denied';
    if (!groups.has(group)) groups.set(group, el('optgroup', { label: `${group} (policies/examples)` }));
    groups.get(group).append(el('option', { value: ex.id, textContent: ex.title }));
  }
  select.append(...groups.values());
  $('preset').replaceChildren(...state.presets.map((p) => el('option', { value: p.name, textContent: p.label })));
  wire();
  const first = state.examples[0];
  if (first) {
    select.value = first.id;
    await loadExample(first.id);
  }
  status.textContent = 'ready';
  status.dataset.ready = 'true';
}

main();
