// Allure 3 plugin (the shape of @allurereport/plugin-api's Plugin: start,
// update, done, info). At `done` it writes qe-flash's near-duplicate report
// into the Allure report as <plugin id>/index.html, with each test's Allure
// status beside its name. Allure's results hold no source code, so the
// plugin reads the tests from `options.tests` (folders or files; default
// the working folder's test/ or tests/).
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';

const require = createRequire(import.meta.url);

function loadReport() {
  return require('@agentic-qe/v3/report');
}

function defaultTests() {
  return ['test', 'tests', '__tests__', 'spec'].filter((d) => existsSync(d));
}

export default class QEFlashPlugin {
  /** @param {{ tests?: string | string[], threshold?: number, bench?: string, title?: string }} [options] */
  constructor(options = {}) {
    this.options = options;
    this.summary = null;
  }

  async done(context, store) {
    const { loadQEModuleForReport, buildReportData, renderReportHtml } = loadReport();
    const tests = this.options.tests === undefined ? defaultTests() : [].concat(this.options.tests);
    if (tests.length === 0) throw new Error('allure-plugin-qe-flash: no test folder found; set options.tests');
    const module = await loadQEModuleForReport();
    const data = buildReportData(module, tests, {
      threshold: this.options.threshold,
      benchResults: this.options.bench,
      title: this.options.title ?? `Near-duplicate tests: ${context.reportName ?? 'Allure report'}`,
    });
    // Allure's outcome of each test, matched by name.
    const outcomes = new Map();
    for (const r of await store.allTestResults()) outcomes.set(r.name, r.status);
    for (const c of data.cases) {
      const s = outcomes.get(c.name);
      if (s === 'passed' || s === 'failed' || s === 'skipped') c.status = s;
      else if (s === 'broken') c.status = 'failed';
    }
    await context.reportFiles.addFile('index.html', Buffer.from(renderReportHtml(data)));
    this.summary = data;
  }

  async info(context) {
    if (this.summary === null) return undefined;
    const d = this.summary;
    return {
      name: 'Near-duplicate tests (qe-flash)',
      href: `${context.id}/index.html`,
      plugin: 'qe-flash',
      status: d.pairs.length === 0 ? 'passed' : 'broken',
      duration: 0,
      stats: { total: d.cases.length, passed: d.cases.length - new Set(d.pairs.flatMap((p) => [p.a, p.b])).size, broken: new Set(d.pairs.flatMap((p) => [p.a, p.b])).size },
      meta: { pairs: d.pairs.length, clusters: d.clusters.length, threshold: d.threshold },
    };
  }
}
