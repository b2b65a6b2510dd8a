/**
 * The public surface, found mechanically: the TypeScript checker reads each
 * package entry point (package.json "exports" -> js/*.ts), takes every
 * exported function and class, and follows the types they return (and the
 * types of public properties) to every object a user can get hold of: its
 * public methods are entries too. Private and @internal members are not.
 *
 * Names: `fn` for an exported function, `new C` for a class's constructor,
 * `C.m` for a static method, `T#m` for a method of an object of type T
 * (a class or an interface, by its declared name).
 */
import * as path from 'node:path';
import ts from 'typescript';

const ROOT = path.resolve(__dirname, '..', '..');

/** The source file behind each subpath of package.json "exports" that is code (not .wasm or package.json). */
export function entryPointSources(): Record<string, string> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const pkg = require(path.join(ROOT, 'package.json')) as { exports: Record<string, unknown> };
  const out: Record<string, string> = {};
  for (const [subpath, target] of Object.entries(pkg.exports)) {
    const types = typeof target === 'object' && target !== null ? (target as { types?: string }).types : undefined;
    if (types === undefined) continue;
    // dist/types/js/x.d.ts is built from js/x.ts.
    const m = /^\.\/dist\/types\/(.+)\.d\.ts$/.exec(types);
    if (m === null) throw new Error(`exports['${subpath}'].types is not under dist/types: ${types}`);
    out[subpath] = path.join(ROOT, `${m[1]}.ts`);
  }
  return out;
}

export interface Surface {
  /** Every entry, by the names above. */
  entries: Set<string>;
  /** Entry -> the number of parameters it declares (the most over its overloads). */
  arity: Map<string, number>;
  /** Exported classes whose constructor is @internal (made by a method, e.g. HNSWIndex#createFilter): not constructed by users. */
  internalConstructors: Set<string>;
  /** Private, protected and @internal members (`T#m`), which are not entries. */
  hidden: Set<string>;
  /** Export names per entry point, values only (for the runtime cross-check). */
  exportsBySubpath: Record<string, string[]>;
}

function isOurs(decl: ts.Declaration): boolean {
  const file = decl.getSourceFile().fileName;
  return file.startsWith(path.join(ROOT, 'js') + path.sep) || file.startsWith(path.join(ROOT, 'types') + path.sep);
}

function isHidden(symbol: ts.Symbol): boolean {
  if (symbol.getName().startsWith('#') || symbol.getName().startsWith('__')) return true;
  return (symbol.declarations ?? []).some((d) => {
    const flags = ts.getCombinedModifierFlags(d);
    if (flags & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) return true;
    return ts.getJSDocTags(d).some((t) => t.tagName.text === 'internal');
  });
}

export function publicSurface(): Surface {
  const sources = entryPointSources();
  const program = ts.createProgram(Object.values(sources), {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.CommonJS,
    strict: true,
    skipLibCheck: true,
    noEmit: true,
    types: ['node'],
  });
  const checker = program.getTypeChecker();
  const entries = new Set<string>();
  const arity = new Map<string, number>();
  const exportsBySubpath: Record<string, string[]> = {};
  const hidden = new Set<string>();
  const internalConstructors = new Set<string>();
  const seenTypes = new Set<string>();

  const add = (name: string, signatures: readonly ts.Signature[]) => {
    entries.add(name);
    arity.set(name, Math.max(arity.get(name) ?? 0, ...signatures.map((s) => s.getParameters().length)));
  };

  /** The named types of ours inside t (unwrapping Promise, arrays, unions). */
  const ourTypes = (t: ts.Type, out: ts.Type[] = []): ts.Type[] => {
    if (t.isUnion() || t.isIntersection()) {
      for (const u of t.types) ourTypes(u, out);
      return out;
    }
    const args = checker.getTypeArguments(t as ts.TypeReference) ?? [];
    const symbol = t.getSymbol() ?? t.aliasSymbol;
    const decl = symbol?.declarations?.[0];
    if (decl !== undefined && isOurs(decl) && (ts.isClassDeclaration(decl) || ts.isInterfaceDeclaration(decl))) out.push(t);
    for (const a of args) ourTypes(a, out);
    return out;
  };

  const followReturns = (signatures: readonly ts.Signature[]) => {
    for (const s of signatures) for (const t of ourTypes(s.getReturnType())) walk(t);
  };

  /** Every public method of an object of type t, and the objects its methods and properties lead to. */
  const walk = (t: ts.Type) => {
    const typeName = (t.getSymbol() as ts.Symbol).getName();
    if (seenTypes.has(typeName)) return;
    seenTypes.add(typeName);
    for (const prop of checker.getPropertiesOfType(t)) {
      if (isHidden(prop)) {
        hidden.add(`${typeName}#${prop.getName()}`);
        continue;
      }
      const decl = prop.valueDeclaration ?? prop.declarations?.[0];
      if (decl === undefined) continue;
      const propType = checker.getTypeOfSymbolAtLocation(prop, decl);
      const calls = propType.getCallSignatures();
      const isMethod = ts.isMethodDeclaration(decl) || ts.isMethodSignature(decl) || calls.length > 0;
      if (isMethod && !(ts.isGetAccessor(decl) || ts.isPropertyDeclaration(decl) || ts.isPropertySignature(decl) || ts.isParameter(decl))) {
        add(`${typeName}#${prop.getName()}`, calls);
        followReturns(calls);
      } else {
        for (const u of ourTypes(propType)) walk(u);
      }
    }
  };

  for (const [subpath, file] of Object.entries(sources)) {
    const sf = program.getSourceFile(file);
    if (sf === undefined) throw new Error(`no source file ${file}`);
    const moduleSymbol = checker.getSymbolAtLocation(sf) as ts.Symbol;
    const names: string[] = [];
    for (const exported of checker.getExportsOfModule(moduleSymbol)) {
      const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
      if (!(symbol.flags & ts.SymbolFlags.Value)) continue; // types only
      const name = exported.getName();
      names.push(name);
      const decl = symbol.valueDeclaration as ts.Declaration;
      const type = checker.getTypeOfSymbolAtLocation(symbol, decl);
      if (symbol.flags & ts.SymbolFlags.Class) {
        const typeOnly = (exported.declarations ?? []).some((d) => ts.isExportSpecifier(d) && (d.isTypeOnly || d.parent.parent.isTypeOnly));
        const ctor = (symbol.declarations ?? []).flatMap((d) => (ts.isClassDeclaration(d) ? d.members.filter(ts.isConstructorDeclaration) : []));
        const internalCtor = ctor.some((c) => ts.getJSDocTags(c).some((t) => t.tagName.text === 'internal'));
        // A class exported as a type only cannot be constructed by users; nor can one whose constructor is @internal.
        if (internalCtor) internalConstructors.add(name);
        if (!typeOnly && !internalCtor) add(`new ${name}`, type.getConstructSignatures());
        walk(checker.getDeclaredTypeOfSymbol(symbol));
        for (const prop of checker.getPropertiesOfType(type)) {
          if (prop.getName() === 'prototype' || isHidden(prop)) continue;
          if (!(prop.declarations ?? []).some(isOurs)) continue; // inherited from Error and the like
          const calls = checker.getTypeOfSymbolAtLocation(prop, decl).getCallSignatures();
          if (calls.length > 0) add(`${name}.${prop.getName()}`, calls);
        }
      } else if (type.getCallSignatures().length > 0) {
        add(name, type.getCallSignatures());
        followReturns(type.getCallSignatures());
      } else if (name === 'default') {
        // The default export: an object of functions also exported by name (checked at run time).
      } else {
        for (const u of ourTypes(type)) walk(u);
      }
    }
    exportsBySubpath[subpath] = names;
  }
  return { entries, arity, hidden, internalConstructors, exportsBySubpath };
}
