// The dashboard's pure modules under Node's own test runner (`npm test`, no browser needed).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { annotationTime, normalizeAnnotations } from '../src/annotations.js';
import { formatValue, kindOfUnit } from '../src/format.js';
import { forgetToken, saveToken, takeTokenFromLocation } from '../src/token.js';

class MemoryStorage {
  constructor() { this.items = new Map(); }
  getItem(k) { return this.items.has(k) ? this.items.get(k) : null; }
  setItem(k, v) { this.items.set(k, String(v)); }
  removeItem(k) { this.items.delete(k); }
}

test('a token in the fragment is stored and leaves the address bar', () => {
  const storage = new MemoryStorage();
  const replaced = [];
  const history = { replaceState: (_s, _t, url) => replaced.push(url) };
  const token = takeTokenFromLocation({ hash: '#token=abc.def&x=1', pathname: '/dashboard', search: '?range=6h' }, history, storage);
  assert.equal(token, 'abc.def');
  assert.deepEqual(replaced, ['/dashboard?range=6h#x=1']);
  // no fragment: the stored token, and the address is left alone
  assert.equal(takeTokenFromLocation({ hash: '', pathname: '/dashboard', search: '' }, history, storage), 'abc.def');
  assert.equal(replaced.length, 1);
  forgetToken(storage);
  assert.equal(takeTokenFromLocation({ hash: '', pathname: '/dashboard', search: '' }, history, storage), null);
  saveToken(storage, '  pasted  ');
  assert.equal(storage.getItem('chatstream.dashboard.token'), 'pasted');
});

test('annotation times in ms, s or ISO 8601; unreadable ones are dropped', () => {
  assert.equal(annotationTime({ at: 1_790_000_000_000 }), 1_790_000_000_000);
  assert.equal(annotationTime({ detected_at: 1_790_000_000 }), 1_790_000_000_000);
  assert.equal(annotationTime({ occurred_at: '2026-09-21T14:13:20Z' }), 1_790_000_000_000);
  assert.equal(annotationTime({ window_end: '1790000000' }), 1_790_000_000_000);
  assert.equal(annotationTime({ at: 'soon' }), null);
  assert.equal(annotationTime({}), null);
  const out = normalizeAnnotations({
    anomalies: [{ detected_at: 1_790_000_000, metric: 'error spike' }, { nothing: 1 }],
    scaling: [{ at: '2026-09-21T14:13:20Z' }],
  });
  assert.deepEqual(out, {
    anomalies: [{ at: 1_790_000_000_000, label: 'error spike' }],
    scaling: [{ at: 1_790_000_000_000, label: 'scaling' }],
  });
  assert.deepEqual(normalizeAnnotations({}), { anomalies: [], scaling: [] });
});

test('numbers by kind, and the API units they come from', () => {
  assert.equal(formatValue(null), '–');
  assert.equal(formatValue(0.1234, 'percent'), '12.34%');
  assert.equal(formatValue(820, 'ms'), '820 ms');
  assert.equal(formatValue(15_000, 'ms'), '15 s');
  assert.equal(formatValue(0, 'usd'), '$0');
  assert.equal(formatValue(0.00049, 'usd'), '$0.00049');
  assert.equal(formatValue(1234.5, 'usd'), '$1,235');
  assert.equal(formatValue(123_456), '123.5K');
  assert.equal(kindOfUnit('ratio'), 'percent');
  assert.equal(kindOfUnit('ms'), 'ms');
  assert.equal(kindOfUnit('usd'), 'usd');
  assert.equal(kindOfUnit('messages'), 'count');
});
