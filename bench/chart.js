'use strict';
/*
 * Grouped bar chart of median time per workload (log scale, since the naive
 * baseline is tens of times slower than the rest), one bar per engine, with
 * labelled axes and a legend. Plain SVG, no dependencies.
 */

const COLORS = ['#1b9e77', '#66a61e', '#d95f02', '#7570b3', '#e7298a', '#e6ab02'];

function escapeXml(s) {
  return String(s).replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]);
}

/** series: engine labels; groups: [{ label, values: (number|null)[] }] in ms. */
function barChartSvg({ title, series, groups }) {
  const width = 980;
  const height = 520;
  const margin = { top: 60, right: 30, bottom: 110, left: 90 };
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const all = groups.flatMap((g) => g.values).filter((v) => typeof v === 'number' && v > 0);
  const lo = Math.pow(10, Math.floor(Math.log10(Math.min(...all))));
  const hi = Math.pow(10, Math.ceil(Math.log10(Math.max(...all))));
  const y = (v) => margin.top + plotH - ((Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * plotH;
  const groupW = plotW / groups.length;
  const barW = Math.min(34, (groupW * 0.8) / series.length);
  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${width}" height="${height}" fill="white"/>`);
  out.push(`<text x="${width / 2}" y="28" text-anchor="middle" font-size="16" font-weight="bold">${escapeXml(title)}</text>`);
  for (let e = Math.log10(lo); e <= Math.log10(hi) + 1e-9; e++) {
    const v = Math.pow(10, e);
    const yy = y(v);
    out.push(`<line x1="${margin.left}" x2="${width - margin.right}" y1="${yy}" y2="${yy}" stroke="#ddd"/>`);
    out.push(`<text x="${margin.left - 8}" y="${yy + 4}" text-anchor="end">${v >= 1 ? v : v.toPrecision(1)}</text>`);
  }
  out.push(`<line x1="${margin.left}" x2="${margin.left}" y1="${margin.top}" y2="${margin.top + plotH}" stroke="black"/>`);
  out.push(`<line x1="${margin.left}" x2="${width - margin.right}" y1="${margin.top + plotH}" y2="${margin.top + plotH}" stroke="black"/>`);
  out.push(`<text transform="translate(24 ${margin.top + plotH / 2}) rotate(-90)" text-anchor="middle" font-size="13">median time per call (ms, log scale)</text>`);
  out.push(`<text x="${margin.left + plotW / 2}" y="${height - 14}" text-anchor="middle" font-size="13">workload (reference shape)</text>`);
  groups.forEach((g, gi) => {
    const x0 = margin.left + gi * groupW + (groupW - barW * series.length) / 2;
    g.values.forEach((v, si) => {
      const x = x0 + si * barW;
      if (typeof v === 'number' && v > 0) {
        out.push(`<rect x="${x.toFixed(1)}" y="${y(v).toFixed(1)}" width="${(barW - 2).toFixed(1)}" height="${(margin.top + plotH - y(v)).toFixed(1)}" fill="${COLORS[si % COLORS.length]}"><title>${escapeXml(`${series[si]}: ${v.toFixed(2)} ms`)}</title></rect>`);
        out.push(`<text x="${(x + barW / 2 - 1).toFixed(1)}" y="${(y(v) - 4).toFixed(1)}" text-anchor="middle" font-size="9">${v >= 100 ? v.toFixed(0) : v.toFixed(1)}</text>`);
      } else {
        out.push(`<text x="${(x + barW / 2 - 1).toFixed(1)}" y="${margin.top + plotH - 6}" text-anchor="middle" font-size="9" fill="#999">n/a</text>`);
      }
    });
    const lines = String(g.label).split('\n');
    lines.forEach((line, li) => {
      out.push(`<text x="${(margin.left + gi * groupW + groupW / 2).toFixed(1)}" y="${margin.top + plotH + 20 + li * 15}" text-anchor="middle">${escapeXml(line)}</text>`);
    });
  });
  series.forEach((s, si) => {
    const lx = margin.left + 10 + si * Math.min(180, plotW / series.length);
    out.push(`<rect x="${lx}" y="40" width="12" height="12" fill="${COLORS[si % COLORS.length]}"/>`);
    out.push(`<text x="${lx + 16}" y="50">${escapeXml(s)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}

module.exports = { barChartSvg };
