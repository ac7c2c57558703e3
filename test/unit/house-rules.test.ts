/**
 * The house rules of README.md "Layout", as a test: it reads the imports of every file in src/
 * (`import … from`, `export … from`, `import()`, `require()`) with the TypeScript parser — so an
 * import in a comment or a string is not one — and fails naming the file and the import when
 *  - a top-level folder imports one that FOLDER_IMPORTS below does not allow it (the one table of
 *    the import direction; README.md says it in words),
 *  - anything outside src/dev imports src/dev, except cli/dev-commands.ts, which itself is loaded
 *    only through a dynamic import (a production server never loads the development wing),
 *  - pkcs11js is imported outside src/token/,
 *  - an Error is thrown raw (`new Error(` or `Error(`) outside RAW_ERRORS_ALLOWED: errors that leave
 *    a function are coded XrdErrors (src/platform/errors.ts, docs/errors.md).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, posix, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const SRC = join(dirname(fileURLToPath(import.meta.url)), '../../src');

/**
 * Which top-level folders of src/ each may import (besides itself). Imports flow one way: README.md
 * lists the folders so that each imports only folders below it (checked below). `dev` may import
 * anything; nothing imports `dev` (see DEV_GATEWAY).
 */
const FOLDER_IMPORTS: Readonly<Record<string, readonly string[]>> = {
  platform: [],
  // The database engines (SQLite, PostgreSQL) behind one async interface, what stores import.
  storage: ['platform'],
  xml: ['platform'],
  protocol: ['xml', 'platform'],
  certificates: ['protocol', 'xml', 'platform'],
  globalconf: ['certificates', 'protocol', 'xml', 'platform'],
  trust: ['globalconf', 'certificates', 'protocol', 'xml', 'platform'],
  // The signer's contract (client, wire types, operation ids, the one algorithm table), what its users import.
  signerapi: ['platform'],
  signature: ['signerapi', 'trust', 'globalconf', 'certificates', 'protocol', 'xml', 'platform'],
  token: ['signerapi', 'platform'],
  signer: ['signerapi', 'token', 'trust', 'globalconf', 'certificates', 'protocol', 'xml', 'platform'],
  tls: ['signerapi', 'platform'],
  serverconf: ['globalconf', 'certificates', 'protocol', 'storage', 'xml', 'platform'],
  messagelog: ['signature', 'trust', 'globalconf', 'certificates', 'protocol', 'xml', 'platform', 'storage'],
  opmonitor: ['signerapi', 'storage', 'protocol', 'xml', 'platform'],
  metaservice: ['serverconf', 'globalconf', 'certificates', 'protocol', 'xml', 'platform'],
  admin: ['signerapi', 'messagelog', 'serverconf', 'signature', 'trust', 'globalconf', 'certificates', 'protocol', 'xml', 'platform'],
  proxy: ['metaservice', 'messagelog', 'opmonitor', 'serverconf', 'tls', 'signerapi', 'signature', 'trust', 'globalconf', 'certificates', 'protocol', 'storage', 'xml', 'platform'],
  cli: ['admin', 'proxy', 'metaservice', 'messagelog', 'opmonitor', 'serverconf', 'tls', 'signer', 'signerapi', 'token', 'signature', 'trust', 'globalconf', 'certificates', 'protocol', 'storage', 'xml', 'platform'],
  dev: ['*'],
};

/** The one file outside src/dev that may import it: the `xrd local …` and `xrd testpki …` commands. */
const DEV_GATEWAY = 'cli/dev-commands.ts';

/** Raw Errors that stay raw, each with why. `text` is the expression's source text. */
const RAW_ERRORS_ALLOWED: readonly { file: string; text: string; reason: string }[] = [];

interface Import {
  specifier: string;
  kind: 'static' | 'dynamic' | 'require';
  line: number;
}

interface FileFacts {
  imports: Import[];
  /** Source text of each `new Error(…)` or `Error(…)`, with its line. */
  rawErrors: { text: string; line: number }[];
}

/** The imports and raw Errors of one file (path relative to src/, text its source). */
function readFile(path: string, text: string): FileFacts {
  const kind = /\.[cm]?js$/.test(path) ? ts.ScriptKind.JS : ts.ScriptKind.TS;
  const source = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true, kind);
  const facts: FileFacts = { imports: [], rawErrors: [] };
  const lineOf = (node: ts.Node) => source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      facts.imports.push({ specifier: node.moduleSpecifier.text, kind: 'static', line: lineOf(node) });
    } else if (ts.isCallExpression(node)) {
      const [first] = node.arguments;
      const literal = first && ts.isStringLiteralLike(first) ? first.text : undefined;
      if (node.expression.kind === ts.SyntaxKind.ImportKeyword) {
        // A computed specifier cannot be checked: it is reported as itself.
        facts.imports.push({ specifier: literal ?? first?.getText(source) ?? '', kind: 'dynamic', line: lineOf(node) });
      } else if (ts.isIdentifier(node.expression) && node.expression.text === 'require' && literal !== undefined) {
        facts.imports.push({ specifier: literal, kind: 'require', line: lineOf(node) });
      } else if (ts.isIdentifier(node.expression) && node.expression.text === 'Error') {
        facts.rawErrors.push({ text: node.getText(source), line: lineOf(node) });
      }
    } else if (ts.isNewExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === 'Error') {
      facts.rawErrors.push({ text: node.getText(source), line: lineOf(node) });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return facts;
}

const topFolder = (path: string): string => (path.includes('/') ? path.slice(0, path.indexOf('/')) : '');

/**
 * Every broken rule in these files (paths relative to src/, as `proxy/x.ts`), one line each naming
 * the file, the line and the import.
 */
function checkHouseRules(
  files: ReadonlyMap<string, string>,
  table: Readonly<Record<string, readonly string[]>> = FOLDER_IMPORTS,
  allowedErrors: typeof RAW_ERRORS_ALLOWED = RAW_ERRORS_ALLOWED,
): string[] {
  const problems: string[] = [];
  const usedAllowances = new Set<(typeof allowedErrors)[number]>();
  for (const [path, text] of files) {
    const from = topFolder(path);
    const facts = readFile(path, text);
    const allowed = table[from];
    if (!allowed) problems.push(`${path}: folder "${from || '(src itself)'}" is not in the import table (house-rules.test.ts FOLDER_IMPORTS)`);
    for (const imp of facts.imports) {
      const where = `${path}:${imp.line}: ${imp.kind === 'static' ? 'imports' : imp.kind === 'dynamic' ? 'import()s' : 'requires'} '${imp.specifier}'`;
      if (imp.specifier === 'pkcs11js' || imp.specifier.startsWith('pkcs11js/')) {
        if (from !== 'token') problems.push(`${where}: pkcs11js is for src/token/ only`);
        continue;
      }
      if (!imp.specifier.startsWith('.')) continue;
      const target = posix.normalize(posix.join(posix.dirname(path), imp.specifier));
      if (target.startsWith('..')) {
        problems.push(`${where}: reaches outside src/`);
        continue;
      }
      const to = topFolder(target);
      if (target === DEV_GATEWAY && imp.kind !== 'dynamic') {
        problems.push(`${where}: ${DEV_GATEWAY} loads the development wing and is imported only through import()`);
      }
      if (to === from || !allowed) continue;
      if (to === 'dev') {
        if (path !== DEV_GATEWAY) problems.push(`${where}: only src/dev and ${DEV_GATEWAY} may import src/dev`);
        continue;
      }
      if (allowed.includes('*') || allowed.includes(to)) continue;
      problems.push(`${where}: ${from} may not import ${to} (README.md "Layout"; allowed: ${allowed.join(', ') || 'nothing'})`);
    }
    for (const raw of facts.rawErrors) {
      const allowance = allowedErrors.find((a) => a.file === path && a.text === raw.text);
      if (allowance) usedAllowances.add(allowance);
      else problems.push(`${path}:${raw.line}: raw ${raw.text.slice(0, 80)}: throw a coded XrdError (src/platform/errors.ts) or justify it in RAW_ERRORS_ALLOWED`);
    }
  }
  for (const a of allowedErrors) if (!usedAllowances.has(a)) problems.push(`RAW_ERRORS_ALLOWED: ${a.file} has no ${a.text} any more; remove the entry`);
  return problems;
}

function sourceFiles(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !/\.(ts|mts|cts|js|mjs|cjs)$/.test(entry.name)) continue;
    const full = join(entry.parentPath, entry.name);
    files.set(relative(dir, full).split('\\').join('/'), readFileSync(full, 'utf8'));
  }
  return files;
}

describe('house rules (README.md "Layout")', () => {
  it('src/ keeps them: import direction, src/dev apart, pkcs11js in token/, no raw Error', () => {
    expect(checkHouseRules(sourceFiles(SRC), FOLDER_IMPORTS, RAW_ERRORS_ALLOWED)).toEqual([]);
  });

  it('every top-level folder of src/ is in the table, and the table names only folders', () => {
    const folders = readdirSync(SRC, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
    expect(Object.keys(FOLDER_IMPORTS).sort()).toEqual(folders.sort());
    for (const targets of Object.values(FOLDER_IMPORTS)) for (const t of targets) expect(t === '*' || t in FOLDER_IMPORTS, t).toBe(true);
  });

  // Which also means imports flow one way: the table has no cycle.
  it("README.md's Layout table lists the folders in the table's order: each imports only folders below it", () => {
    const readme = readFileSync(join(SRC, '../README.md'), 'utf8');
    const layout = readme.slice(readme.indexOf('## Layout'));
    const order = [...layout.matchAll(/^\| `src\/([a-z]+)\/` \|/gm)].map((m) => m[1]!);
    expect([...order].sort()).toEqual(Object.keys(FOLDER_IMPORTS).sort());
    for (const [folder, targets] of Object.entries(FOLDER_IMPORTS)) {
      for (const target of targets) if (target !== '*') expect(order.indexOf(target), `${folder} → ${target}`).toBeGreaterThan(order.indexOf(folder));
    }
  });

  it('reports each kind of broken rule in a small example, naming file, line and import', () => {
    const example = new Map([
      ['platform/low.ts', "import { x } from '../proxy/high.ts';\n"],
      ['proxy/high.ts', "export const x = 1;\nexport { y } from '../platform/low.ts';\nthrow new Error('raw');\n"],
      ['signer/keys.ts', "// import pkcs11js from 'pkcs11js'; (a comment is not an import)\nimport pkcs11js from 'pkcs11js';\n"],
      ['token/port.cjs', "const pkcs11js = require('pkcs11js');\nthrow Error('also raw');\n"],
      ['cli/xrd.ts', "import { start } from '../dev/localinstance/local-instance.ts';\nimport '../cli/dev-commands.ts';\nconst later = () => import('./dev-commands.ts');\n"],
      ['cli/dev-commands.ts', "import { start } from '../dev/localinstance/local-instance.ts';\n"],
      ['dev/localinstance/local-instance.ts', "import { x } from '../../proxy/high.ts';\nconst text = \"import('../../cli/xrd.ts')\";\n"],
      ['newfolder/a.ts', "import { x } from '../platform/low.ts';\n"],
    ]);
    const allowed = [
      { file: 'proxy/high.ts', text: "new Error('raw')", reason: 'example' },
      { file: 'proxy/gone.ts', text: "new Error('gone')", reason: 'example of a stale entry' },
    ];
    const table = { platform: [], proxy: ['platform'], signer: ['platform'], token: ['platform'], cli: ['proxy', 'platform'], dev: ['*'] };
    expect(checkHouseRules(example, table, allowed)).toEqual([
      `platform/low.ts:1: imports '../proxy/high.ts': platform may not import proxy (README.md "Layout"; allowed: nothing)`,
      `signer/keys.ts:2: imports 'pkcs11js': pkcs11js is for src/token/ only`,
      `token/port.cjs:2: raw Error('also raw'): throw a coded XrdError (src/platform/errors.ts) or justify it in RAW_ERRORS_ALLOWED`,
      `cli/xrd.ts:1: imports '../dev/localinstance/local-instance.ts': only src/dev and cli/dev-commands.ts may import src/dev`,
      `cli/xrd.ts:2: imports '../cli/dev-commands.ts': cli/dev-commands.ts loads the development wing and is imported only through import()`,
      `newfolder/a.ts: folder "newfolder" is not in the import table (house-rules.test.ts FOLDER_IMPORTS)`,
      `RAW_ERRORS_ALLOWED: proxy/gone.ts has no new Error('gone') any more; remove the entry`,
    ]);
  });
});
