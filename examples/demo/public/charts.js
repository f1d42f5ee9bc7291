// @ts-check
/**
 * The spend history charts, as SVG markup (no chart library): the caller's spend per UTC
 * day as columns, and per model as bars. Every bar carries its exact nano-dollars in
 * `data-nanos` and a `<title>` tooltip; text is escaped.
 */
import { formatCount, formatNanos } from './format.js';

/**
 * @typedef {{ date: string, costNanos: number, streams: number }} DaySpend
 * @typedef {{ model: string, costNanos: number, streams: number }} ModelSpend
 */

/** @param {string} text */
export function escapeXml(text) {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );
}

/** @param {number} n */
const num = (n) => String(Math.round(n * 100) / 100);

/** @param {number} streams */
const streamsLabel = (streams) => `${formatCount(streams)} stream${streams === 1 ? '' : 's'}`;

/**
 * Columns, one per day, oldest left; heights in proportion to the largest day. A day
 * without spend has a column of height 0 (and still its data attributes).
 * @param {DaySpend[]} days
 * @param {{ width?: number, height?: number }} [size]
 */
export function dailyChart(days, size = {}) {
  const width = size.width ?? 560;
  const height = size.height ?? 180;
  const top = 22;
  const bottom = 22;
  const plot = height - top - bottom;
  const max = Math.max(0, ...days.map((d) => d.costNanos));
  const slot = days.length > 0 ? width / days.length : width;
  const barWidth = Math.max(1, slot * 0.7);
  // Dates under the first, the last and a few columns in between.
  const every = Math.max(1, Math.ceil(days.length / 7));
  const parts = days.map((day, i) => {
    const h = max > 0 ? (day.costNanos / max) * plot : 0;
    const x = i * slot + (slot - barWidth) / 2;
    const title = `${day.date}: ${formatNanos(day.costNanos)} · ${streamsLabel(day.streams)}`;
    const label =
      i % every === 0 || i === days.length - 1
        ? `<text class="axis" x="${num(x + barWidth / 2)}" y="${height - 6}" text-anchor="middle">${escapeXml(day.date.slice(5))}</text>`
        : '';
    return (
      `<rect class="bar${day.costNanos === 0 ? ' zero' : ''}" data-date="${escapeXml(day.date)}" data-nanos="${day.costNanos}" data-streams="${day.streams}" ` +
      `x="${num(x)}" y="${num(top + plot - h)}" width="${num(barWidth)}" height="${num(h)}"><title>${escapeXml(title)}</title></rect>${label}`
    );
  });
  const scale = `<text class="axis" x="0" y="14">${escapeXml(max > 0 ? `max ${formatNanos(max)} a day` : 'no spend yet')}</text>`;
  const baseline = `<line class="baseline" x1="0" x2="${width}" y1="${top + plot}" y2="${top + plot}"/>`;
  return `<svg class="chart" viewBox="0 0 ${width} ${height}" role="img" aria-label="Spend per day">${scale}${baseline}${parts.join('')}</svg>`;
}

/**
 * Bars, one per model, largest first (as given), lengths in proportion to the largest.
 * @param {ModelSpend[]} models
 * @param {{ width?: number }} [size]
 */
export function modelChart(models, size = {}) {
  const width = size.width ?? 560;
  const row = 26;
  const labelWidth = 170;
  const amountWidth = 110;
  const plot = width - labelWidth - amountWidth;
  const max = Math.max(0, ...models.map((m) => m.costNanos));
  const height = Math.max(row, models.length * row);
  const parts = models.map((m, i) => {
    const y = i * row;
    const w = max > 0 ? (m.costNanos / max) * plot : 0;
    const title = `${m.model}: ${formatNanos(m.costNanos)} · ${streamsLabel(m.streams)}`;
    return (
      `<text class="label" x="0" y="${y + 17}">${escapeXml(m.model)}</text>` +
      `<rect class="bar" data-model="${escapeXml(m.model)}" data-nanos="${m.costNanos}" data-streams="${m.streams}" ` +
      `x="${labelWidth}" y="${y + 5}" width="${num(w)}" height="${row - 10}"><title>${escapeXml(title)}</title></rect>` +
      `<text class="amount" x="${width}" y="${y + 17}" text-anchor="end">${escapeXml(formatNanos(m.costNanos))}</text>`
    );
  });
  const empty =
    models.length === 0 ? '<text class="axis" x="0" y="17">no spend in this period</text>' : '';
  return `<svg class="chart" viewBox="0 0 ${width} ${height}" role="img" aria-label="Spend per model">${empty}${parts.join('')}</svg>`;
}
