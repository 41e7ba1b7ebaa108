// The import graph flows one way (cli -> primary -> shard -> quic/tcp -> http3/pipeline -> proxy/cache/compress/static
// -> admin/balancer/health -> fastcgi/ratelimit/wire -> config -> shared) and has no cycles. A violation names the importing file and the import.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src');
const RANK: Record<string, number> = {
  cli: 0, demo: 1, primary: 1, shard: 2, quic: 3, tcp: 3, http3: 4, pipeline: 4,
  proxy: 5, cache: 5, compress: 5, static: 5, admin: 6, balancer: 6, health: 6, fastcgi: 7, ratelimit: 7, wire: 7,
  config: 8, shared: 9,
};

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : [],
  );
}

function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:from\s+|import\()\s*'(\.{1,2}\/[^']+)'/g)) out.push(path.resolve(path.dirname(file), m[1]));
  return out;
}

const folderOf = (file: string) => path.relative(SRC, file).split(path.sep)[0];

test('every src folder has a rank (a new folder must be placed in the layering)', () => {
  const folders = new Set(files(SRC).map(folderOf));
  for (const f of folders) assert.ok(f in RANK, `src/${f} has no rank in test/unit/layering.test.ts`);
});

test('imports only go down the layers', () => {
  const violations: string[] = [];
  for (const file of files(SRC)) {
    const from = folderOf(file);
    for (const target of imports(file)) {
      const to = folderOf(target);
      if (to === from) continue;
      if (RANK[to] <= RANK[from]) violations.push(`${path.relative(SRC, file)} imports src/${path.relative(SRC, target)}`);
    }
  }
  assert.deepEqual(violations, []);
});

test('no import cycles between files', () => {
  const graph = new Map(files(SRC).map((f) => [f, imports(f)]));
  const state = new Map<string, 1 | 2>();
  const cycles: string[] = [];
  const visit = (f: string, trail: string[]) => {
    if (state.get(f) === 2) return;
    if (state.get(f) === 1) {
      cycles.push([...trail.slice(trail.indexOf(f)), f].map((x) => path.relative(SRC, x)).join(' -> '));
      return;
    }
    state.set(f, 1);
    for (const t of graph.get(f) ?? []) visit(t, [...trail, f]);
    state.set(f, 2);
  };
  for (const f of graph.keys()) visit(f, []);
  assert.deepEqual(cycles, []);
});
