// Build agent.min.js (default, no logging) and agent.debug.js (logs why it skipped) with esbuild,
// and fail when a build is over its gzip budget.
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

const BUDGET = { 'agent.min.js': 850 };
const common = { entryPoints: ['src/agent.js'], bundle: false, target: 'es2015', legalComments: 'none', charset: 'utf8' };

await build({ ...common, outfile: 'dist/agent.min.js', minify: true, define: { DEBUG: 'false' } });
await build({ ...common, outfile: 'dist/agent.debug.js', minify: false, define: { DEBUG: 'true' } });

let failed = false;
for (const name of ['agent.min.js', 'agent.debug.js']) {
  const bytes = readFileSync(`dist/${name}`);
  const gz = gzipSync(bytes, { level: 9 }).length;
  const budget = BUDGET[name];
  const verdict = budget ? (gz <= budget ? `ok (budget ${budget})` : `OVER BUDGET ${budget}`) : '';
  console.log(`${name}: ${bytes.length} bytes, ${gz} bytes gzip -9 ${verdict}`);
  if (budget && gz > budget) failed = true;
}
if (failed) process.exit(1);
