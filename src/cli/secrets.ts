/**
 * Where PINs and passwords come from: a prompt with echo off, one line of standard input, a file or
 * an environment variable the administrator names. A PIN on the command line needs an explicit
 * insecure flag, because argv is visible to every user of the machine; a password cannot be given
 * there at all.
 */
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { XrdError } from '../platform/errors.ts';

export interface SecretSource {
  readonly file?: string;
  readonly env?: string;
  readonly value?: string;
}

/**
 * Reads a secret from the named source, else asks on the terminal (or reads a line of a piped stdin).
 * @returns undefined when there is no source and `prompt` is false
 */
export async function readSecret(source: SecretSource, question: string, prompt: boolean): Promise<string | undefined> {
  if (source.value !== undefined) return source.value;
  if (source.file) {
    try {
      return readFileSync(source.file, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new XrdError('IOError', { reason: `cannot read the secret file ${source.file}: ${(err as Error).message}` }, { cause: err });
    }
  }
  if (source.env) {
    const value = process.env[source.env];
    if (value === undefined) throw new XrdError('InvalidConfiguration', { reason: `environment variable ${source.env} is not set` });
    return value;
  }
  if (!prompt) return undefined;
  return process.stdin.isTTY ? askHidden(question) : readStdinLine();
}

function askHidden(question: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    process.stderr.write(question);
    stdin.setRawMode(true);
    stdin.resume();
    let value = '';
    const done = (err?: Error): void => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (chunk: Buffer): void => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new XrdError('IOError', { reason: 'cancelled' }));
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else value += ch;
      }
    };
    stdin.on('data', onData);
  });
}

let stdinLines: AsyncIterator<string> | undefined;

/** Lines of a piped standard input, shared by successive questions (old PIN, then new PIN). */
async function readStdinLine(): Promise<string> {
  stdinLines ??= createInterface({ input: process.stdin, terminal: false })[Symbol.asyncIterator]();
  const next = await stdinLines.next();
  if (next.done) throw new XrdError('IOError', { reason: 'nothing on standard input (a PIN or password was expected)' });
  return next.value;
}
