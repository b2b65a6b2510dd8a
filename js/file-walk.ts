/**
 * Walking the folders a user names: every file with an accepted name,
 * hidden and build folders skipped, and what .gitignore files exclude left
 * out (js/gitignore.ts). The .gitignore files read are those in the walked
 * folders and, when the folder is inside a git repository, those of its
 * parent folders up to the repository's root, plus .git/info/exclude; the
 * user's global excludes file is not read.
 */
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { isIgnored, parseIgnoreFile, type IgnoreRule } from './gitignore';

/** A path the user named, or a file or folder under it, that cannot be read. */
export class PathError extends Error {}

/** Folders never walked into: dependencies, build output, caches. Hidden folders are skipped too. */
export const SKIPPED_FOLDERS: ReadonlySet<string> = new Set(['node_modules', 'dist', 'build', 'coverage', '__pycache__', 'vendor', 'target']);

export interface WalkOptions {
  /** Leave out what .gitignore files exclude; default true. */
  gitignore?: boolean;
  /** Which file names to keep when walking; default every file. Files named directly are always kept. */
  accept?: (fileName: string) => boolean;
}

export interface FoundFile {
  /** The path as the user named it, or joined below the folder they named. */
  path: string;
  /**
   * For a file found by walking: its path from the named folder, starting
   * with that folder's own name ("tests/unit/a.test.ts" for `tests`), with
   * "/" separators. Null for a file named directly.
   */
  fromFolder: string | null;
}

const toSlashes = (p: string): string => (nodePath.sep === '/' ? p : p.split(nodePath.sep).join('/'));

function readIgnoreFile(file: string, base: string): IgnoreRule[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EISDIR' || code === 'ENOTDIR') return [];
    throw new PathError(`cannot read ${file}: ${(error as Error).message}`);
  }
  return parseIgnoreFile(text, base);
}

/** The rules that apply inside `folder` from outside it: the repository's exclude file and the .gitignore files of its parents up to the repository root. */
function inheritedRules(folder: string): IgnoreRule[] {
  const absolute = nodePath.resolve(folder);
  const chain: string[] = [];
  let root: string | null = null;
  for (let dir = absolute; ; dir = nodePath.dirname(dir)) {
    chain.unshift(dir);
    if (fs.existsSync(nodePath.join(dir, '.git'))) {
      root = dir;
      break;
    }
    if (nodePath.dirname(dir) === dir) break;
  }
  if (root === null) return [];
  const rules = readIgnoreFile(nodePath.join(root, '.git', 'info', 'exclude'), toSlashes(root));
  for (const dir of chain.slice(0, -1)) rules.push(...readIgnoreFile(nodePath.join(dir, '.gitignore'), toSlashes(dir)));
  return rules;
}

/**
 * The files under the given paths, sorted by path, each once: files named
 * directly as they are, folders walked recursively.
 */
export function walkFiles(paths: readonly string[], options: WalkOptions = {}): FoundFile[] {
  const useIgnore = options.gitignore ?? true;
  const accept = options.accept ?? (() => true);
  const found = new Map<string, FoundFile>();

  const walk = (dir: string, fromFolder: string, rules: IgnoreRule[]): void => {
    const absolute = toSlashes(nodePath.resolve(dir));
    const here = useIgnore ? [...rules, ...readIgnoreFile(nodePath.join(dir, '.gitignore'), absolute)] : rules;
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch (error) {
      throw new PathError(`cannot read the folder ${dir}: ${(error as Error).message}`);
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const isDirectory = entry.isDirectory();
      if (!isDirectory && !entry.isFile()) continue; // symbolic links, sockets...
      if (isDirectory && (entry.name.startsWith('.') || SKIPPED_FOLDERS.has(entry.name))) continue;
      if (!isDirectory && !accept(entry.name)) continue;
      if (useIgnore && isIgnored(here, `${absolute}/${entry.name}`, isDirectory)) continue;
      const full = nodePath.join(dir, entry.name);
      const rel = `${fromFolder}/${entry.name}`;
      if (isDirectory) walk(full, rel, here);
      else if (!found.has(full)) found.set(full, { path: full, fromFolder: rel });
    }
  };

  for (const p of paths) {
    let stat: fs.Stats;
    try {
      stat = fs.statSync(p);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new PathError(code === 'ENOENT' ? `no such file or folder: ${p}` : `cannot read ${p}: ${(error as Error).message}`);
    }
    if (stat.isDirectory()) walk(p, nodePath.basename(nodePath.resolve(p)), useIgnore ? inheritedRules(p) : []);
    else found.set(p, { path: p, fromFolder: null });
  }
  return [...found.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
