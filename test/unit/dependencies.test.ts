/**
 * Every package the code, tests and bench import is declared in package.json: one that only arrives
 * through another package's dependencies can vanish or change major version with any upgrade.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = new URL('../../', import.meta.url).pathname;
const SOURCE_DIRS = [
  'core',
  'functions',
  'agent',
  'cli',
  'local',
  'infra',
  'scripts',
  'bench',
  'test',
  'bin',
];

function sourceFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && /\.(ts|mts|js|mjs)$/.test(entry.name))
    .map((entry) => join(entry.parentPath, entry.name));
}

/** `@scope/name/sub` → `@scope/name`, `name/sub` → `name`; undefined for relative, alias and built-in imports. */
function packageOf(specifier: string): string | undefined {
  // Only what names a package; `from '` also occurs inside strings and comments.
  if (!/^(@[\w.-]+\/)?[\w.-]+(\/[\w./-]*)?$/.test(specifier) || specifier.startsWith('.')) return undefined;
  if (isBuiltin(specifier)) return undefined;
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

describe('package.json', () => {
  it('declares every package imported by the code, the tests and the bench', () => {
    const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
      devDependencies: Record<string, string>;
    };
    const declared = new Set([
      ...Object.keys(manifest.dependencies),
      ...Object.keys(manifest.devDependencies),
    ]);
    const undeclared = new Map<string, string>();
    for (const file of SOURCE_DIRS.flatMap(sourceFiles)) {
      const text = readFileSync(file, 'utf8');
      for (const [, specifier] of text.matchAll(/(?:\bfrom|\bimport\s*\(?)\s*['"]([^'"]+)['"]/g)) {
        const name = packageOf(specifier!);
        // Type-only packages come as @types/<name>.
        if (name && !declared.has(name) && !declared.has(`@types/${name}`))
          undeclared.set(name, file.slice(ROOT.length));
      }
    }
    expect(Object.fromEntries(undeclared)).toEqual({});
  });
});
