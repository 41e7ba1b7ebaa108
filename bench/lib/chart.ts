// A self-contained SVG chart of a bench report: one band per scenario, one row per target. Left: req/s as a bar
// (scaled to the scenario's fastest target, value printed). Right: latency on a log scale, a line from p50 to
// p99.9 with ticks at p50, p90, p99, p99.9 and a dot at max.
import type { BenchReport } from './report.ts';

const COLORS: Record<string, string> = {
  direct: '#7f7f7f',
  'nginx+php-fpm': '#8c564b',
  quiclb: '#d62728',
  nginx: '#2ca02c',
  haproxy: '#1f77b4',
  caddy: '#9467bd',
  node15: '#ff7f0e',
};

const ROW = 14;
const GAP = 10;
const NAME_W = 250;
const TARGET_W = 60;
const BAR_W = 300;
const LAT_W = 420;
const PAD = 20;
const HEADER = 70;
const LAT_MIN = 0.1; // ms
const LAT_MAX = 10_000; // ms

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function fmt(x: number): string {
  if (x >= 1000) return `${Math.round(x).toLocaleString('en-US')}`;
  if (x >= 10) return x.toFixed(0);
  return x.toFixed(1);
}

export function svgChart(report: BenchReport): string {
  const latX0 = PAD + NAME_W + TARGET_W + BAR_W + 70;
  const logX = (v: number): number => {
    const c = Math.min(LAT_MAX, Math.max(LAT_MIN, v));
    return latX0 + ((Math.log10(c) - Math.log10(LAT_MIN)) / (Math.log10(LAT_MAX) - Math.log10(LAT_MIN))) * LAT_W;
  };
  const parts: string[] = [];
  let y = HEADER;
  for (const s of report.scenarios) {
    if (s.results.length === 0) continue;
    const maxRps = Math.max(...s.results.map((r) => r.m.rps), 1);
    const bandH = s.results.length * ROW;
    parts.push(`<rect x="${PAD}" y="${y - 2}" width="${latX0 + LAT_W - PAD}" height="${bandH + 4}" fill="#f6f6f6"/>`);
    parts.push(`<text x="${PAD + 4}" y="${y + bandH / 2 + 4}" font-weight="bold">${esc(s.scenario.name)}</text>`);
    s.results.forEach((r, i) => {
      const ry = y + i * ROW;
      const color = COLORS[r.target] ?? '#333';
      const w = (r.m.rps / maxRps) * BAR_W;
      const ratio = r.ratio ? ` (${r.ratio.rps.toFixed(2)}x)` : '';
      const l = r.m.latency;
      parts.push(`<g><title>${esc(`${s.scenario.name} ${r.target}: ${fmt(r.m.rps)} req/s; p50 ${l.p50} ms, p90 ${l.p90}, p99 ${l.p99}, p99.9 ${l.p999}, max ${l.max}`)}</title>`);
      parts.push(`<text x="${PAD + NAME_W}" y="${ry + 10}" fill="${color}">${esc(r.target)}</text>`);
      parts.push(`<rect x="${PAD + NAME_W + TARGET_W}" y="${ry + 2}" width="${w.toFixed(1)}" height="${ROW - 4}" fill="${color}"/>`);
      parts.push(`<text x="${PAD + NAME_W + TARGET_W + w + 4}" y="${ry + 10}">${fmt(r.m.rps)}${ratio}</text>`);
      const cy = ry + ROW / 2;
      // Percentiles are missing (NaN) where h2load's log could not be read: then only the max is drawn.
      if (Number.isFinite(l.p50) && Number.isFinite(l.p999)) {
        parts.push(`<line x1="${logX(l.p50).toFixed(1)}" x2="${logX(l.p999).toFixed(1)}" y1="${cy}" y2="${cy}" stroke="${color}" stroke-width="2"/>`);
        for (const [v, h] of [[l.p50, 5], [l.p90, 3], [l.p99, 5], [l.p999, 3]] as const) {
          parts.push(`<line x1="${logX(v).toFixed(1)}" x2="${logX(v).toFixed(1)}" y1="${cy - h}" y2="${cy + h}" stroke="${color}" stroke-width="2"/>`);
        }
      }
      if (Number.isFinite(l.max)) parts.push(`<circle cx="${logX(l.max).toFixed(1)}" cy="${cy}" r="2.5" fill="none" stroke="${color}"/>`);
      parts.push('</g>');
    });
    y += bandH + GAP;
  }
  // Latency axis: decades.
  const axis: string[] = [];
  for (let e = Math.log10(LAT_MIN); e <= Math.log10(LAT_MAX); e++) {
    const v = 10 ** e;
    const x = logX(v);
    axis.push(`<line x1="${x.toFixed(1)}" x2="${x.toFixed(1)}" y1="${HEADER - 8}" y2="${y}" stroke="#ddd"/>`);
    axis.push(`<text x="${x.toFixed(1)}" y="${HEADER - 12}" text-anchor="middle">${v >= 1 ? v.toLocaleString('en-US') : v}</text>`);
  }
  const m = report.meta;
  const width = latX0 + LAT_W + PAD + 20;
  const height = y + PAD;
  const title = `quiclb bench ${m.date}: ${m.cores} cores, ${m.mode} set, ${m.loadMode}, ${m.durationS}s per run, ${m.connections} concurrent`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
<text x="${PAD}" y="20" font-size="14" font-weight="bold">${esc(title)}</text>
<text x="${PAD + NAME_W + TARGET_W}" y="${HEADER - 12}">req/s (bar scaled to the scenario's fastest; ratio to direct baseline)</text>
<text x="${latX0}" y="${HEADER - 30}">latency ms, log scale: ticks p50 | p90 | p99 | p99.9, circle = max</text>
${axis.join('\n')}
${parts.join('\n')}
</svg>
`;
}
