// @ts-check
/**
 * `npm run demo`: starts the demo app on PORT (default 3000) and prints its URL and the
 * link that hands the page the demo keys.
 * Settings come from the environment; see examples/demo/README.md.
 */
import { startMetrics } from './metrics.mjs';

// The global MeterProvider must exist before tokenmeter's middleware is created, so the
// rest of the app is loaded after it.
const metrics = startMetrics();
const { readConfig } = await import('./config.mjs');
const { createUpstream } = await import('./upstream.mjs');
const { createStore } = await import('./store.mjs');
const { createLedger } = await import('./ledger.mjs');
const { createDemoApp } = await import('./app.mjs');

/** @type {import('./config.mjs').DemoConfig} */
let config;
try {
  config = readConfig(process.env);
} catch (error) {
  console.error(`tokenmeter demo: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}

const upstream = await createUpstream(config);
const { store, description: storeDescription } = await createStore(config);
const spend = await createLedger(config);
const app = createDemoApp({
  config,
  store,
  upstream,
  metricsHandler: metrics.handler,
  ledger: spend?.ledger,
  log: (line) => console.log(`tokenmeter demo: ${line}`),
});

// Express 5 calls this with the error too when the port is taken: the 'error' handler below
// says so, and nothing here may claim the demo is listening.
const server = app.listen(config.port, config.host, (/** @type {Error | undefined} */ error) => {
  if (error) return;
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = ['0.0.0.0', '::'].includes(config.host) ? 'localhost' : config.host;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  console.log(`tokenmeter demo: answers from ${upstream.description}`);
  console.log(`tokenmeter demo: budgets and rate limits ${storeDescription}`);
  console.log(
    `tokenmeter demo: spend ${spend?.description ?? 'not recorded (set DATABASE_URL to keep a spend ledger in PostgreSQL)'}`,
  );
  console.log(
    `tokenmeter demo: users ${config.users.map((u) => `${u.id} ($${u.dailyBudgetUsd}/day)`).join(', ')}; ` +
      `${config.requestsPerMinute} requests/min each; model ${config.model}, max_tokens ${config.maxTokens}`,
  );
  // Random keys are printed here and nowhere else: no route lists them. Keys set in
  // TOKENMETER_DEMO_USERS are the operator's own and stay out of the log.
  const generated = config.users.filter((u) => u.generated);
  const given = config.users.filter((u) => !u.generated);
  if (generated.length > 0) {
    console.log(
      `tokenmeter demo: keys ${generated.map((u) => `${u.id}=${u.key}`).join(', ')} ` +
        '(new at every start; TOKENMETER_DEMO_USERS=id:dailyBudgetUsd:key sets one)',
    );
  }
  if (given.length > 0) {
    console.log(
      `tokenmeter demo: keys of ${given.map((u) => u.id).join(', ')} from TOKENMETER_DEMO_USERS (not printed)`,
    );
  }
  console.log(
    `tokenmeter demo: /metrics ${config.metricsToken ? 'needs the bearer token TOKENMETER_DEMO_METRICS_TOKEN' : 'answers callers on this machine only (set TOKENMETER_DEMO_METRICS_TOKEN to scrape it from elsewhere)'}`,
  );
  const url = `http://${urlHost}:${port}`;
  console.log(`tokenmeter demo: listening on ${url}`);
  // The keys ride in the fragment: the browser never sends it, so no server or proxy logs them.
  console.log(
    generated.length > 0
      ? `tokenmeter demo: open ${url}/#keys=${generated.map((u) => u.key).join(',')} (the page keeps the keys)`
      : `tokenmeter demo: open ${url} and paste a key`,
  );
});
server.on('error', (error) => {
  console.error(
    `tokenmeter demo: cannot listen on ${config.host}:${config.port}: ${error.message}`,
  );
  process.exit(1);
});

let closing = false;
/** @param {NodeJS.Signals} signal */
async function shutdown(signal) {
  if (closing) return;
  closing = true;
  console.log(`tokenmeter demo: ${signal}, shutting down`);
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  // The ledger writes what it still holds before the process leaves.
  await Promise.allSettled([
    upstream.close(),
    store.shutdown?.(),
    spend?.ledger.close(),
    metrics.shutdown(),
  ]);
  process.exit(0);
}
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
