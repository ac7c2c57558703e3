/**
 * A quick reader for documents written the way X-Road signature documents are (ours, and the
 * reference's when it writes no character references): ASCII, no references, comments, processing
 * instructions, CDATA or DTD, attributes unprefixed, in canonical order and without repeats. For
 * such a document it builds no tree: one pass records each element in a flat table (numbered in
 * document order from 1, so that no element is falsy) — its name, namespace, attributes, parent,
 * first child and next sibling, and where its tags and content stand in the source. Text is not
 * copied: an element's text is sliced from the source when it is asked for. An element whose
 * subtree is written as canonical XML writes it is canonicalised by copying its source text with a
 * rewritten start tag (`canonicalize`).
 *
 * Anything outside that form — including everything `parseXml` would refuse — makes it answer
 * undefined, and the caller parses with `parseXml`, whose verdict and error then stand as before.
 * So this reader never refuses a document and never has to match the general parser's errors; what
 * its accessors answer must be what the parser's tree says (`child`, `childElements`, `textOf`,
 * `attribute` of xml-tree.ts), which test/signature/canonical-source.test.ts checks on vectors,
 * mutated and generated documents. Written here rather than taken from a library: it exists for
 * speed (bench:signature (b)), and its answers must be exactly `parseXml`'s.
 */
import { isAscii } from 'node:buffer';
import { escapeAttribute, type C14nMethod } from './c14n.ts';
import { ASCII_NAME_START, ASCII_NAME_TABLE, MAX_DEPTH, XML_LIMITS } from './xml-tree.ts';

// Module-local copies of what the character loops read: run through tsx (as the proxies and the
// benchmarks are), an imported binding is read through a getter, which only the optimising
// compiler removes.
const NAME_TABLE = ASCII_NAME_TABLE;
const START = ASCII_NAME_START;
const MAX_ATTRIBUTES = XML_LIMITS.maxAttributes;

/** Longer documents go to the general parser, whose node and value bounds cannot then be reached here. */
const MAX_LENGTH = 1024 * 1024;
/**
 * Characters outside the form besides non-ASCII ones (which UTF-8 decoding could alter): control
 * characters (XML refuses most; tab and CR would be normalised) but the line feed, DEL, and `&`
 * (no references). Tags cannot hold them (names, spaces and `=` are read character by character);
 * attribute values and short text are checked as they are read, longer text when it is asked for
 * (`base64` checks it by decoding it) or at the latest by `charactersInForm`.
 */
const OUTSIDE_CHARACTER = /[\x00-\x09\x0b-\x1f&>\x7f]/;
/** Text up to this long is checked as it is read; longer runs are left to `base64` or `charactersInForm`. */
const SHORT_TEXT = 64;
const XML_NAMESPACE = 'http://www.w3.org/XML/1998/namespace';
const XMLNS_NAMESPACE = 'http://www.w3.org/2000/xmlns/';
const XML_DECLARATION = /^<\?xml[ \n]+version[ \n]*=[ \n]*(["'])1\.[0-9]+\1(?:[ \n]+encoding[ \n]*=[ \n]*(["'])[A-Za-z][\w.-]*\2)?(?:[ \n]+standalone[ \n]*=[ \n]*(["'])(?:yes|no)\3)?[ \n]*\?>/;
const NO_DECLARATIONS: ReadonlyMap<string, string> = new Map();
/** Documents longer than this are not kept as shapes. */
const SHAPE_MAX_LENGTH = 64 * 1024;
/** How many shapes are kept: a proxy's peers, each signing with its own certificate and OCSP responses. */
const RECENT_SHAPES = 8;
/** The shapes of the last documents read in full, the latest first. */
const recentShapes: Shape[] = [];
/** No element (index 0 of the table is not used). */
const NONE = 0;

/** An element of a SourceDocument: its number in document order, from 1. */
export type SourceElement = number;

export class SourceDocument {
  // The table: one entry per element, at its number.
  private names: string[] = [''];
  private prefixes: string[] = [''];
  private localNames: string[] = [''];
  private namespaces: string[] = [''];
  private parents: number[] = [NONE];
  private firstChildren: number[] = [NONE];
  private lastChildren: number[] = [NONE];
  private nextSiblings: number[] = [NONE];
  /** Where its start tag begins. */
  private starts: number[] = [0];
  /** Just past its start tag. */
  private contentStarts: number[] = [0];
  /** Where its end tag starts (contentStart for an element that closes itself). */
  private contentEnds: number[] = [0];
  /** Just past its end tag. */
  private ends: number[] = [0];
  /** Whether everything inside it is written as canonical XML writes it (see `canonicalize`). */
  private canonicalContent: boolean[] = [false];
  /** Its attributes: `attributeCounts` entries of the attribute table from `firstAttributes`. */
  private firstAttributes: number[] = [0];
  private attributeCounts: number[] = [0];
  private declarations: ReadonlyMap<string, string>[] = [NO_DECLARATIONS];
  private attributeNames: string[] = [];
  private attributeValues: string[] = [];
  /** Text runs not yet checked for characters outside the form: start, end, start, end, … (a checked run's start is set to -1). */
  private readonly unchecked: number[] = [];
  /** Every text run between tags: start, end, start, end, … (what a shape is made of). */
  private readonly runs: number[] = [];
  private idIndex = new Map<string, SourceElement>();
  /** Whether the table came from a shape (a document with the same markup read before), not from reading tag by tag. */
  private shaped = false;
  /** The root element. */
  readonly root: SourceElement = 1;

  private constructor(private readonly text: string) {}

  /**
   * The document's table, or undefined when the document is not in the form this reader takes.
   * With `shapes` (the default), a document whose markup is byte for byte that of one read lately
   * — only the text between tags differs, as from one signer message after message — takes that
   * document's table with its positions moved (see Shape), instead of being read tag by tag.
   */
  static read(input: string | Buffer, options: { readonly shapes?: boolean } = {}): SourceDocument | undefined {
    if (input.length > MAX_LENGTH) return undefined;
    const bytes = typeof input === 'string' ? Buffer.from(input) : input;
    // ASCII reads the same as UTF-8 and as Latin-1.
    if (!isAscii(bytes)) return undefined;
    const text = bytes.toString('latin1');
    const shapes = options.shapes ?? true;
    if (shapes) {
      for (const shape of recentShapes) {
        const doc = SourceDocument.withShape(shape, text);
        if (doc) return doc;
      }
    }
    const doc = new SourceDocument(text);
    if (!doc.readAll()) return undefined;
    if (shapes && text.length <= SHAPE_MAX_LENGTH) {
      if (recentShapes.length >= RECENT_SHAPES) recentShapes.pop();
      recentShapes.unshift(doc.shape());
    }
    return doc;
  }

  /** What a shape needs of this document, read in full (see Shape). */
  private shape(): Shape {
    const segments: string[] = [];
    const runEnds: number[] = [];
    let at = 0;
    // Each segment copied out of the text: a string of its own, compared without going through a parent string.
    const own = (from: number, to: number) => Buffer.from(this.text.slice(from, to), 'latin1').toString('latin1');
    for (let i = 0; i < this.runs.length; i += 2) {
      segments.push(own(at, this.runs[i]!));
      runEnds.push(this.runs[i + 1]!);
      at = this.runs[i + 1]!;
    }
    segments.push(own(at, this.text.length));
    const runsBefore = (position: number) => {
      let low = 0;
      let high = runEnds.length;
      while (low < high) {
        const mid = (low + high) >> 1;
        if (runEnds[mid]! <= position) low = mid + 1;
        else high = mid;
      }
      return low;
    };
    return {
      doc: this,
      segments,
      runEnds,
      runsBefore: [this.starts.map(runsBefore), this.contentStarts.map(runsBefore), this.contentEnds.map(runsBefore), this.ends.map(runsBefore)],
    };
  }

  /**
   * `text` read with a shape's table (shared: no document changes its table after reading), its
   * positions moved; undefined when its markup differs from the shape's or its text is outside the
   * form. One comparison (memcmp) and one search per run of text.
   */
  private static withShape(shape: Shape, text: string): SourceDocument | undefined {
    const segments = shape.segments;
    if (!textAt(text, 0, segments[0]!)) return undefined;
    /** How far the end of each run moved: moved[i] after i runs (moved[0]: none before the first). */
    const moved = [0];
    const doc = new SourceDocument(text);
    let at = segments[0]!.length;
    for (let i = 1; i < segments.length; i++) {
      const end = text.indexOf('<', at);
      if (end < 0 || !textAt(text, end, segments[i]!)) return undefined;
      if (end - at > SHORT_TEXT) doc.unchecked.push(at, end);
      else if (!inForm(text, at, end)) return undefined;
      moved.push(end - shape.runEnds[i - 1]!);
      at = end + segments[i]!.length;
    }
    if (at !== text.length) return undefined;
    const from = shape.doc;
    const [startRuns, contentStartRuns, contentEndRuns, endRuns] = shape.runsBefore;
    const move = (positions: number[], runs: readonly number[]) => positions.map((p, e) => p + moved[runs[e]!]!);
    doc.starts = move(from.starts, startRuns!);
    doc.contentStarts = move(from.contentStarts, contentStartRuns!);
    doc.contentEnds = move(from.contentEnds, contentEndRuns!);
    doc.ends = move(from.ends, endRuns!);
    doc.names = from.names;
    doc.prefixes = from.prefixes;
    doc.localNames = from.localNames;
    doc.namespaces = from.namespaces;
    doc.parents = from.parents;
    doc.firstChildren = from.firstChildren;
    doc.lastChildren = from.lastChildren;
    doc.nextSiblings = from.nextSiblings;
    doc.canonicalContent = from.canonicalContent;
    doc.firstAttributes = from.firstAttributes;
    doc.attributeCounts = from.attributeCounts;
    doc.declarations = from.declarations;
    doc.attributeNames = from.attributeNames;
    doc.attributeValues = from.attributeValues;
    doc.idIndex = from.idIndex;
    doc.shaped = true;
    return doc;
  }

  /** Elements by their `Id` attribute, the first in document order for each. */
  get ids(): ReadonlyMap<string, SourceElement> {
    return this.idIndex;
  }

  /** Whether the table came from a shape (a document with the same markup read before), not from reading tag by tag. */
  get fromShape(): boolean {
    return this.shaped;
  }

  /** How many elements the document has (they are numbered 1 to count). */
  get count(): number {
    return this.names.length - 1;
  }

  name(e: SourceElement): string {
    return this.names[e]!;
  }

  prefix(e: SourceElement): string {
    return this.prefixes[e]!;
  }

  localName(e: SourceElement): string {
    return this.localNames[e]!;
  }

  namespace(e: SourceElement): string {
    return this.namespaces[e]!;
  }

  parent(e: SourceElement): SourceElement | undefined {
    return this.parents[e] || undefined;
  }

  namespaceDeclarations(e: SourceElement): ReadonlyMap<string, string> {
    return this.declarations[e]!;
  }

  /** As `child` of xml-tree.ts: the first child element with this name. */
  child(parent: SourceElement, namespace: string, localName: string): SourceElement | undefined {
    for (let c = this.firstChildren[parent]!; c !== NONE; c = this.nextSiblings[c]!) {
      if (this.localNames[c] === localName && this.namespaces[c] === namespace) return c;
    }
    return undefined;
  }

  /** As `childElements` of xml-tree.ts. */
  childElements(parent: SourceElement): SourceElement[] {
    const out: SourceElement[] = [];
    for (let c = this.firstChildren[parent]!; c !== NONE; c = this.nextSiblings[c]!) out.push(c);
    return out;
  }

  /** As `attribute` of xml-tree.ts (the reader takes unprefixed attributes only). */
  attribute(e: SourceElement, name: string): string | undefined {
    const first = this.firstAttributes[e]!;
    for (let a = first; a < first + this.attributeCounts[e]!; a++) if (this.attributeNames[a] === name) return this.attributeValues[a];
    return undefined;
  }

  attributes(e: SourceElement): { readonly name: string; readonly value: string }[] {
    const first = this.firstAttributes[e]!;
    return Array.from({ length: this.attributeCounts[e]! }, (_, i) => ({ name: this.attributeNames[first + i]!, value: this.attributeValues[first + i]! }));
  }

  /** As `textOf` of xml-tree.ts: the text directly in the element (in this form, what stands between its tags). */
  textOf(e: SourceElement): string {
    let c = this.firstChildren[e]!;
    if (c === NONE) return this.text.slice(this.contentStarts[e], this.contentEnds[e]);
    let out = this.text.slice(this.contentStarts[e], this.starts[c]);
    for (; c !== NONE; c = this.nextSiblings[c]!) out += this.text.slice(this.ends[c], this.nextSiblings[c] === NONE ? this.contentEnds[e] : this.starts[this.nextSiblings[c]!]);
    return out;
  }

  /**
   * The element's text decoded as base64 when it is written as we write it, without white space
   * (which also proves it holds no character outside the form); undefined for any other text,
   * valid or not, which the general path is to judge.
   */
  base64(e: SourceElement): Buffer | undefined {
    const bytes = compactBase64(this.textOf(e));
    if (bytes && this.firstChildren[e] === NONE) {
      const at = this.unchecked.indexOf(this.contentStarts[e]!);
      if (at >= 0 && at % 2 === 0) this.unchecked[at] = -1;
    }
    return bytes;
  }

  /** Whether the text not yet checked (see `base64`) holds only characters of the form; a document for which this is false is outside it. */
  charactersInForm(): boolean {
    for (let i = 0; i < this.unchecked.length; i += 2) {
      if (this.unchecked[i]! >= 0 && !inForm(this.text, this.unchecked[i]!, this.unchecked[i + 1]!)) return false;
    }
    return true;
  }

  /** The element's content in order, as the parser's children: elements, and the text between them. */
  content(e: SourceElement): (SourceElement | string)[] {
    const out: (SourceElement | string)[] = [];
    let at = this.contentStarts[e]!;
    for (let c = this.firstChildren[e]!; c !== NONE; c = this.nextSiblings[c]!) {
      if (this.starts[c]! > at) out.push(this.text.slice(at, this.starts[c]));
      out.push(c);
      at = this.ends[c]!;
    }
    if (this.contentEnds[e]! > at) out.push(this.text.slice(at, this.contentEnds[e]));
    return out;
  }

  /**
   * `element` canonicalised as `canonicalize` in c14n.ts would canonicalise the parser's tree,
   * copied from the source; undefined where the source is not written that way below the element
   * (`canonicalize` of the tree is then needed). The element's own start tag is written anew:
   * inclusive C14N puts every namespace in scope on it, exclusive C14N those it and its attributes
   * use (and the PrefixList's). Below it nothing is rewritten, which is right when every start tag
   * there is `<name a="v" b="w">` with single spaces, no declarations and the attributes in order
   * (they always are: the reader takes no other order), every end tag `</name>`, no element closes
   * itself, text holds no `>`, and, for exclusive C14N, every prefix used below is rendered on the
   * element already. Comments never need dropping: the form has none.
   */
  canonicalize(e: SourceElement, method: C14nMethod): string | undefined {
    if (!this.canonicalContent[e]) return undefined;
    let tag = '<' + this.names[e];
    const scope = this.namespacesInScope(e);
    if (method.exclusive) {
      const rendered = new Map<string, string>();
      const render = (prefix: string) => {
        const uri = scope.get(prefix) ?? (prefix === '' ? '' : undefined);
        if (uri !== undefined && uri !== '') rendered.set(prefix, uri);
      };
      render(this.prefixes[e]!);
      for (const prefix of method.inclusivePrefixes ?? []) if (prefix === '' || scope.has(prefix)) render(prefix);
      // Below the element, a prefix not rendered here would be declared where it is first used.
      const defaultEmpty = (scope.get('') ?? '') === '';
      for (let d = e + 1; d < this.names.length && this.starts[d]! < this.ends[e]!; d++) {
        const prefix = this.prefixes[d]!;
        if (!rendered.has(prefix) && !(prefix === '' && defaultEmpty)) return undefined;
      }
      for (const prefix of [...rendered.keys()].sort()) tag += declaration(prefix, rendered.get(prefix)!);
    } else {
      for (const prefix of [...scope.keys()].sort()) {
        const uri = scope.get(prefix)!;
        if (prefix !== '' || uri !== '') tag += declaration(prefix, uri);
      }
    }
    const first = this.firstAttributes[e]!;
    for (let a = first; a < first + this.attributeCounts[e]!; a++) tag += ' ' + this.attributeNames[a] + '="' + escapeAttribute(this.attributeValues[a]!) + '"';
    return tag + '>' + this.text.slice(this.contentStarts[e], this.contentEnds[e]) + '</' + this.names[e] + '>';
  }

  private namespacesInScope(e: SourceElement): Map<string, string> {
    const scope = new Map<string, string>();
    for (let at = e; at !== NONE; at = this.parents[at]!) {
      for (const [prefix, uri] of this.declarations[at]!) if (!scope.has(prefix)) scope.set(prefix, uri);
    }
    return scope;
  }

  /** Reads the whole text into the table; false when it is outside the form. */
  private readAll(): boolean {
    const s = this.text;
    let pos = 0;
    if (s.startsWith('<?')) {
      const declaration = XML_DECLARATION.exec(s);
      if (!declaration) return false;
      pos = declaration[0].length;
    }
    while (isSpace(s.charCodeAt(pos))) pos++;
    if (s.charCodeAt(pos) !== 0x3c /* < */) return false;

    const bindings: Bindings = ['xml', XML_NAMESPACE];
    /** Open elements, innermost last, and how many binding entries each pushed. */
    const open: number[] = [];
    const bound: number[] = [];
    let lt = pos;
    // The next `>`: a tag must end exactly there, so neither text nor attribute values hold one.
    let gt = s.indexOf('>', lt);
    for (;;) {
      if (lt < 0 || gt < 0) return false;
      const c1 = s.charCodeAt(lt + 1);
      const tagEnd = gt + 1;
      if (c1 === 0x2f /* / */) {
        const top = open.pop();
        if (top === undefined) return false;
        const name = this.names[top]!;
        // Compared where it stands: a slice would be a new string compared with the slow path of string equality.
        const end = lt + 2 + name.length;
        for (let i = 0; i < name.length; i++) if (s.charCodeAt(lt + 2 + i) !== name.charCodeAt(i)) return false;
        let p = end;
        while (isSpace(s.charCodeAt(p))) p++;
        if (p !== gt) return false;
        if (p !== end) this.canonicalContent[top] = false;
        this.contentEnds[top] = lt;
        this.ends[top] = tagEnd;
        const declared = bound.pop()!;
        // Setting an array's length is a call into the runtime: only where the element declared something.
        if (declared > 0) bindings.length -= declared;
        this.closed(top);
      } else {
        if (c1 === 0x21 /* ! */ || c1 === 0x3f /* ? */ || open.length >= MAX_DEPTH) return false;
        const parent = open.length === 0 ? NONE : open[open.length - 1]!;
        const before = bindings.length;
        const e = this.startTag(lt, gt, parent, bindings);
        if (e === NONE) return false;
        if (this.ends[e]! < 0) {
          open.push(e);
          bound.push(bindings.length - before);
        } else {
          if (bindings.length > before) bindings.length = before;
          this.closed(e);
        }
      }
      if (open.length === 0) {
        // Only white space may follow the root.
        for (let p = tagEnd; p < s.length; p++) if (!isSpace(s.charCodeAt(p))) return false;
        return true;
      }
      lt = s.indexOf('<', tagEnd);
      gt = s.indexOf('>', tagEnd);
      if (lt < 0 || gt < lt) return false;
      if (lt === tagEnd) continue;
      this.runs.push(tagEnd, lt);
      if (lt - tagEnd > SHORT_TEXT) this.unchecked.push(tagEnd, lt);
      else if (!inForm(s, tagEnd, lt)) return false;
    }
  }

  /** An element whose end is read: its parent's content is canonical only if its own is and its tags were. */
  private closed(e: SourceElement): void {
    const parent = this.parents[e]!;
    if (parent !== NONE && !this.canonicalContent[e]) this.canonicalContent[parent] = false;
  }

  /**
   * The start tag at `lt`, ending at `gt` (`>` or `/>`): its element entered in the table under
   * `parent`, with its declarations pushed on `bindings` and indexed in `ids` when it has an Id;
   * NONE when outside the form.
   */
  private startTag(lt: number, gt: number, parent: SourceElement, bindings: Bindings): SourceElement {
    const s = this.text;
    const end = nameEnd(s, lt + 1);
    if (end < 0) return NONE;
    const name = s.slice(lt + 1, end);
    const colon = nameColon < 0 ? -1 : nameColon - lt - 1;
    // Written as canonical XML writes a tag below the apex: one space before each attribute, `="`, no declaration.
    let canonicalTag = true;
    let declarations: Map<string, string> | undefined;
    const firstAttribute = this.attributeNames.length;
    let id: string | undefined;
    let lastAttribute = '';
    let p = end;
    let count = 0;
    for (;;) {
      const spaceAt = p;
      while (isSpace(s.charCodeAt(p))) p++;
      if (p === gt) {
        if (p !== spaceAt) canonicalTag = false;
        break;
      }
      if (p === gt - 1 && s.charCodeAt(p) === 0x2f /* / */) {
        canonicalTag = false;
        break;
      }
      if (p === spaceAt || ++count > MAX_ATTRIBUTES) return NONE;
      if (p !== spaceAt + 1 || s.charCodeAt(spaceAt) !== 0x20) canonicalTag = false;
      const attrEnd = nameEnd(s, p);
      if (attrEnd < 0) return NONE;
      const attrName = s.slice(p, attrEnd);
      const attrColon = nameColon;
      p = attrEnd;
      if (s.charCodeAt(p) !== 0x3d /* = */) {
        canonicalTag = false;
        while (isSpace(s.charCodeAt(p))) p++;
        if (s.charCodeAt(p) !== 0x3d) return NONE;
      }
      p++;
      const quote = s.charCodeAt(p);
      if (quote !== 0x22 /* " */) {
        canonicalTag = false;
        while (isSpace(s.charCodeAt(p))) p++;
        if (s.charCodeAt(p) !== 0x22 && s.charCodeAt(p) !== 0x27 /* ' */) return NONE;
      }
      const close = s.indexOf(s[p]!, p + 1);
      // `<` anywhere before the tag's end would start markup: outside the form (the general parser decides).
      if (close < 0 || close > gt) return NONE;
      const value = s.slice(p + 1, close);
      // Line feeds in a value become spaces in the tree (XML 1.0 §3.3.3); `<` is not allowed.
      if (!inForm(s, p + 1, close) || value.includes('\n') || value.includes('<')) return NONE;
      p = close + 1;
      if (attrName === 'xmlns' || attrName.startsWith('xmlns:')) {
        const prefix = attrName === 'xmlns' ? '' : attrName.slice(6);
        // A repeat, the reserved prefixes and namespaces, and undeclaring a prefix are outside.
        if (declarations?.has(prefix) || prefix === 'xml' || prefix === 'xmlns' || value === XML_NAMESPACE || value === XMLNS_NAMESPACE || (value === '' && prefix !== '')) return NONE;
        (declarations ??= new Map()).set(prefix, value);
        // Each element looks its prefix up through every binding in scope: more than a signature
        // document ever declares goes to the general parser, whose look-ups do not grow with them.
        if (bindings.length >= 2 * MAX_BINDINGS) return NONE;
        bindings.push(prefix, value);
        canonicalTag = false;
      } else {
        // Unprefixed and in canonical (code unit) order, so none repeats and none is ever reordered.
        if (attrColon >= 0 || attrName <= lastAttribute) return NONE;
        lastAttribute = attrName;
        if (attrName === 'Id') id = value;
        this.attributeNames.push(attrName);
        this.attributeValues.push(value);
      }
    }
    const prefix = colon < 0 ? '' : name.slice(0, colon);
    if (prefix === 'xml' || prefix === 'xmlns') return NONE;
    const namespace = resolve(bindings, prefix);
    if (namespace === undefined || (namespace === '' && prefix !== '')) return NONE;
    const selfClosing = s.charCodeAt(gt - 1) === 0x2f && p === gt - 1;
    const e = this.names.length;
    this.names.push(name);
    this.prefixes.push(prefix);
    this.localNames.push(colon < 0 ? name : name.slice(colon + 1));
    this.namespaces.push(namespace);
    this.parents.push(parent);
    this.firstChildren.push(NONE);
    this.lastChildren.push(NONE);
    this.nextSiblings.push(NONE);
    this.starts.push(lt);
    this.contentStarts.push(gt + 1);
    this.contentEnds.push(gt + 1);
    this.ends.push(selfClosing ? gt + 1 : -1);
    this.canonicalContent.push(true);
    this.firstAttributes.push(firstAttribute);
    this.attributeCounts.push(this.attributeNames.length - firstAttribute);
    this.declarations.push(declarations ?? NO_DECLARATIONS);
    if (id !== undefined && !this.idIndex.has(id)) this.idIndex.set(id, e);
    if (parent !== NONE) {
      const last = this.lastChildren[parent]!;
      if (last === NONE) this.firstChildren[parent] = e;
      else this.nextSiblings[last] = e;
      this.lastChildren[parent] = e;
      if (!canonicalTag || selfClosing) this.canonicalContent[parent] = false;
    }
    return e;
  }
}


/**
 * The markup of a document read in full: its text with the runs of text between tags cut out
 * (`segments`, the markup before, between and after the runs). Another document with exactly this
 * markup and any text between the same tags reads into the same table — the same elements, names,
 * namespaces, attributes and Ids, since all of those are in the markup, and the same verdict on
 * whether each element's content is written canonically (the tags and a `>` in text decide that,
 * and text with `>` is outside the form) — with each position moved by what the runs before it
 * gained or lost (`runsBefore`: for starts, content starts, content ends and ends, how many runs
 * end at or before each element's position).
 */
interface Shape {
  readonly doc: SourceDocument;
  readonly segments: readonly string[];
  readonly runEnds: readonly number[];
  readonly runsBefore: readonly (readonly number[])[];
}

/**
 * Base64 text written without white space, as we write it, decoded; undefined for any other text,
 * invalid or not, which the caller's general path (a regular expression) is to judge. Decoding
 * proves it is base64 when the text is ASCII: Buffer.from skips any other ASCII character and stops
 * at `=`, so the bytes come out short. It also takes base64url's `-` and `_`, looked for apart, and
 * it keeps only the low byte of a character above U+00FF (`Ł` reads as `A`), so text that is not
 * ASCII is refused first — by its UTF-8 length, a native scan, where writing the bytes back to
 * compare cost a tenth of a verification.
 */
export function compactBase64(text: string): Buffer | undefined {
  if (text.length % 4 !== 0 || Buffer.byteLength(text, 'utf8') !== text.length) return undefined;
  const bytes = Buffer.from(text, 'base64');
  const padding = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  if (bytes.length !== (text.length / 4) * 3 - padding || text.includes('-') || text.includes('_')) return undefined;
  return bytes;
}

/**
 * Whether `text` holds `segment` at `at`. A slice compared whole: string equality of two one-byte
 * strings is a memcmp, where startsWith compares character by character and Buffer.compare costs
 * more in checking its arguments than in comparing.
 */
function textAt(text: string, at: number, segment: string): boolean {
  return text.slice(at, at + segment.length) === segment;
}

/** Whether s[from, to) holds no character outside the form. */
function inForm(s: string, from: number, to: number): boolean {
  if (to - from > SHORT_TEXT) return !OUTSIDE_CHARACTER.test(s.slice(from, to));
  for (let p = from; p < to; p++) {
    const c = s.charCodeAt(p);
    if ((c < 0x20 && c !== 0x0a) || c === 0x26 || c === 0x3e || c === 0x7f) return false;
  }
  return true;
}

function declaration(prefix: string, uri: string): string {
  return (prefix === '' ? ' xmlns="' : ` xmlns:${prefix}="`) + escapeAttribute(uri) + '"';
}

/** Namespace bindings in force, innermost last: prefix, URI, prefix, URI, … */
type Bindings = string[];

/** Most namespace declarations in scope on the quick path (ours declare a handful). */
const MAX_BINDINGS = 64;

function resolve(bindings: Bindings, prefix: string): string | undefined {
  for (let i = bindings.length - 2; i >= 0; i -= 2) if (bindings[i] === prefix) return bindings[i + 1];
  return prefix === '' ? '' : undefined;
}

/** Where the last name nameEnd read has its colon (-1 for none). */
let nameColon = -1;

/** The end of the name at `at`, or -1 when there is none (or it is not an ASCII QName); sets nameColon. */
function nameEnd(s: string, at: number): number {
  let c = s.charCodeAt(at);
  if (c >= 0x80 || NAME_TABLE[c] !== START) return -1;
  nameColon = -1;
  for (let p = at + 1; ; p++) {
    c = s.charCodeAt(p);
    if (c < 0x80 && NAME_TABLE[c] !== 0) continue;
    if (c !== 0x3a /* : */ || nameColon >= 0) return p;
    const after = s.charCodeAt(p + 1);
    if (after >= 0x80 || NAME_TABLE[after] !== START) return -1;
    nameColon = p;
  }
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a;
}
