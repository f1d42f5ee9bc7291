/** Test helper: the Grafana dashboard of examples/observability and the metric names its queries use. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { OBSERVABILITY_DIR } from './example-process.js';

export interface DashboardQuery {
  panel: string;
  expr: string;
  /** Instant query (a table of the current values) rather than a range. */
  instant: boolean;
}

interface Panel {
  title: string;
  targets?: Array<{ expr?: string; instant?: boolean }>;
  panels?: Panel[];
}

export function readDashboard(): {
  queries: DashboardQuery[];
  variables: string[];
  panels: number;
} {
  const path = join(OBSERVABILITY_DIR, 'grafana/dashboards/tokenmeter.json');
  const dashboard = JSON.parse(readFileSync(path, 'utf8')) as {
    panels: Panel[];
    templating?: { list: Array<{ query?: string | { query?: string } }> };
  };
  const queries: DashboardQuery[] = [];
  let panels = 0;
  const visit = (list: Panel[]) => {
    for (const panel of list) {
      if (panel.panels) visit(panel.panels);
      if (!panel.targets) continue;
      panels++;
      for (const target of panel.targets) {
        if (target.expr) {
          queries.push({ panel: panel.title, expr: target.expr, instant: target.instant === true });
        }
      }
    }
  };
  visit(dashboard.panels);
  const variables = (dashboard.templating?.list ?? []).map((v) =>
    typeof v.query === 'string' ? v.query : (v.query?.query ?? ''),
  );
  return { queries, variables, panels };
}

const KEYWORDS = new Set(['bool', 'offset', 'and', 'or', 'unless', 'inf', 'nan', 'Inf', 'NaN']);

/**
 * The metric names in a PromQL expression: identifiers left after removing label matchers,
 * `by (…)`-style label lists, range selectors and strings, that are not function calls.
 */
export function metricNamesIn(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ');
  const names = new Set<string>();
  for (const match of stripped.matchAll(/[$\w.:]+/g)) {
    const word = match[0];
    // Numbers, Grafana variables and function calls are not metric names.
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(word) || KEYWORDS.has(word)) continue;
    const after = stripped.slice((match.index ?? 0) + word.length).trimStart();
    if (after.startsWith('(')) continue;
    names.add(word);
  }
  return [...names];
}

/** `label_values(metric, label)` → metric. */
export function metricOfVariable(query: string): string | undefined {
  return /^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,/.exec(query)?.[1];
}

/** Grafana's variables replaced the way Grafana would for a short test run. */
export function expand(expr: string): string {
  return expr
    .replaceAll('$__rate_interval', '30s')
    .replaceAll('$__range', '5m')
    .replaceAll('$model', '.*');
}
