/**
 * The page's files: built from console/ui/ with esbuild into a directory (console/dist by default,
 * gitignored), rebuilt when missing or older than a source, then held in memory and served by name.
 * Only the files of the build are ever served: there is no path from a URL to the file system.
 */
import { copyFileSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

export const UI_DIR = join(dirname(fileURLToPath(import.meta.url)), 'ui');
export const DEFAULT_ASSETS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'dist');
/** The budget for the whole console's JS and CSS, gzipped (issue 14). */
export const BUNDLE_BUDGET_BYTES = 200 * 1024;

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

export interface Asset {
  readonly body: Buffer;
  /** The body gzipped once at load, for browsers that accept it. */
  readonly gzipped: Buffer;
  readonly type: string;
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

function builtAt(outDir: string): number {
  try {
    return Math.min(...['index.html', 'main.js', 'main.css'].map((f) => statSync(join(outDir, f)).mtimeMs));
  } catch {
    return 0;
  }
}

/**
 * Bundles console/ui/ into `outDir`: index.html, main.js, main.css. Built aside and renamed into
 * place file by file, so a console starting meanwhile never reads half a file.
 */
export async function buildUi(outDir: string): Promise<void> {
  const { build } = await import('esbuild');
  const aside = `${outDir}.build-${process.pid}`;
  mkdirSync(aside, { recursive: true });
  mkdirSync(outDir, { recursive: true });
  try {
    await bundle(build, aside);
    copyFileSync(join(UI_DIR, 'index.html'), join(aside, 'index.html'));
    for (const name of readdirSync(aside)) renameSync(join(aside, name), join(outDir, name));
  } finally {
    rmSync(aside, { recursive: true, force: true });
  }
}

async function bundle(build: typeof import('esbuild').build, outDir: string): Promise<void> {
  await build({
    entryPoints: { main: join(UI_DIR, 'main.tsx') },
    outdir: outDir,
    bundle: true,
    minify: true,
    format: 'esm',
    target: 'es2022',
    jsx: 'automatic',
    jsxImportSource: 'preact',
    legalComments: 'none',
    logLevel: 'silent',
  });
}

/** Builds the UI when its build is missing or older than its sources. */
export async function ensureUiBuilt(outDir: string = DEFAULT_ASSETS_DIR): Promise<void> {
  if (builtAt(outDir) < newestMtime(UI_DIR)) await buildUi(outDir);
}

/** The built files by URL path: `/` is the page, the rest under /assets/. */
export function loadAssets(outDir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const name of readdirSync(outDir)) {
    const type = TYPES[extname(name)];
    if (!type) continue;
    const body = readFileSync(join(outDir, name));
    const gzipped = gzipSync(body, { level: 9 });
    assets.set(name === 'index.html' ? '/' : `/assets/${name}`, { body, gzipped, type });
  }
  return assets;
}

/** Gzipped bytes of the JS and CSS, as a browser would download them compressed. */
export function bundleSize(outDir: string): number {
  return readdirSync(outDir)
    .filter((name) => name.endsWith('.js') || name.endsWith('.css'))
    .reduce((sum, name) => sum + gzipSync(readFileSync(join(outDir, name)), { level: 9 }).length, 0);
}
