// Exits 0 when node_modules/ holds exactly the packages package-lock.json pins, so `npm ci` can
// be skipped (offline, and no reinstall on every test run); 1 otherwise. Used by .ci/run and by
// the interop tests (tests/e2e/interop.rs). Node built-ins only: it runs before any install.
import { existsSync, readFileSync } from 'node:fs';

const here = (path) => new URL(path, import.meta.url);
const pinned = (packages) =>
  Object.entries(packages)
    .filter(([path]) => path !== '')
    .map(([path, p]) => `${path} ${p.version} ${p.integrity}`)
    .sort();

try {
  const lock = JSON.parse(readFileSync(here('./package-lock.json'), 'utf8'));
  const installed = JSON.parse(readFileSync(here('./node_modules/.package-lock.json'), 'utf8'));
  const want = pinned(lock.packages);
  const same = JSON.stringify(want) === JSON.stringify(pinned(installed.packages));
  const present = Object.keys(lock.packages)
    .filter((path) => path !== '')
    .every((path) => existsSync(here(`./${path}/package.json`)));
  process.exit(same && present ? 0 : 1);
} catch {
  process.exit(1);
}
