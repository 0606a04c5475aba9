// Writes (or, with --check, verifies) dist/source-hash.txt: one SHA-256 over
// every input of the build — src/, index.html, package.json, the lockfile,
// the TypeScript and Vite configs. The Go test in static/ recomputes it the
// same way, so a change to the sources without a new build fails CI even on
// a fresh clone, where file times mean nothing.
//
// The hash: for each input, sorted by its slash-separated path relative to
// static/, the line "<path>\0<hex sha-256 of its bytes>\n"; then the
// SHA-256 of all lines, in hex.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(fileURLToPath(import.meta.url));
const inputs = ['index.html', 'package.json', 'package-lock.json', 'tsconfig.json', 'vite.config.ts'];

function walk(dir) {
  for (const entry of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
    const rel = `${dir}/${entry.name}`;
    if (entry.isDirectory()) walk(rel);
    else if (entry.isFile()) inputs.push(rel);
  }
}
walk('src');
inputs.sort();

const all = createHash('sha256');
for (const rel of inputs) {
  const sum = createHash('sha256').update(fs.readFileSync(path.join(root, rel))).digest('hex');
  all.update(`${rel}\0${sum}\n`);
}
const hash = all.digest('hex');
const stamp = path.join(root, 'dist', 'source-hash.txt');

if (process.argv.includes('--check')) {
  const have = fs.existsSync(stamp) ? fs.readFileSync(stamp, 'utf8').trim() : '(none)';
  if (have !== hash) {
    console.error(`static/dist is older than its sources (built from ${have}, sources are ${hash}): run \`npm run build\` in static/ and commit dist/`);
    process.exit(1);
  }
  console.log(`static/dist matches its sources (${hash})`);
} else {
  fs.writeFileSync(stamp, `${hash}\n`);
  console.log(`wrote dist/source-hash.txt (${hash})`);
}
