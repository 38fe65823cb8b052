// Build agent.min.js (default, no logging) and agent.debug.js (logs why it skipped) with esbuild,
// and fail when a build is over its gzip budget.
import { build } from 'esbuild';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { gzipSync } from 'node:zlib';

const BUDGET = { 'agent.min.js': 850, 'agent.extras.min.js': 1100 };
const common = { entryPoints: ['src/agent.js'], bundle: false, target: 'es2015', legalComments: 'none', charset: 'utf8' };

// Three builds of one source: the default (no extras), the extras build (outbound links, downloads,
// engaged time, woken by their data-* attributes), and the readable debug build with everything.
await build({ ...common, outfile: 'dist/agent.min.js', minify: true, define: { DEBUG: 'false', EXTRAS: 'false' } });
await build({ ...common, outfile: 'dist/agent.extras.min.js', minify: true,
  define: { DEBUG: 'false', EXTRAS: 'true' } });
await build({ ...common, outfile: 'dist/agent.debug.js', minify: false, define: { DEBUG: 'true', EXTRAS: 'true' } });
// The dashboard: our script and uPlot in one file, their CSS in dashboard.css; served by the
// blueprint, so the page asks no other host for anything.
await build({ entryPoints: ['src/dashboard.js'], bundle: true, minify: true, target: 'es2019',
  outfile: 'dist/dashboard.js', legalComments: 'none', charset: 'utf8' });

// isbot's pattern list (the collector's bot judgement) as data for the Python package: the npm
// package is where its maintainers publish it, pinned in package-lock.json like every other input.
const require = createRequire(import.meta.url);
const isbot = require('isbot');
const isbotMeta = require('isbot/package.json');
writeFileSync('dist/isbot-patterns.json', JSON.stringify({
  source: 'https://www.npmjs.com/package/isbot', version: isbotMeta.version, licence: isbotMeta.license,
  patterns: isbot.list }, null, 1) + '\n');
console.log(`isbot-patterns.json: isbot ${isbotMeta.version}, ${isbot.list.length} patterns`);

let failed = false;
for (const name of ['agent.min.js', 'agent.extras.min.js', 'agent.debug.js', 'dashboard.js', 'dashboard.css']) {
  const bytes = readFileSync(`dist/${name}`);
  const gz = gzipSync(bytes, { level: 9 }).length;
  const budget = BUDGET[name];
  const verdict = budget ? (gz <= budget ? `ok (budget ${budget})` : `OVER BUDGET ${budget}`) : '';
  console.log(`${name}: ${bytes.length} bytes, ${gz} bytes gzip -9 ${verdict}`);
  if (budget && gz > budget) failed = true;
}
if (failed) process.exit(1);
