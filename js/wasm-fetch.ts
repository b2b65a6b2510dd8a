/**
 * Fetching and compiling a module from a URL, the same in browsers and Node.
 * Ground floor: imports nothing of the package.
 */

/** The first four bytes of every WebAssembly module: "\0asm". */
const WASM_MAGIC = [0x00, 0x61, 0x73, 0x6d];

function hasWasmMagic(bytes: Uint8Array): boolean {
  return bytes.length >= 8 && WASM_MAGIC.every((b, i) => bytes[i] === b);
}

/**
 * Fetches and compiles a module: streaming where the server sends
 * application/wasm (compilation overlaps the download), else from the whole
 * body, since streaming compilation refuses any other MIME type. A body that
 * is not a module (a dev server's index page for a lost URL) is an error
 * naming the URL, not a compile error deep inside the engine.
 */
export async function compileFromUrl(url: string): Promise<WebAssembly.Module> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`cannot fetch ${url}: HTTP ${response.status}`);
  const type = (response.headers.get('content-type') ?? '').split(';')[0].trim().toLowerCase();
  if (type === 'application/wasm' && typeof WebAssembly.compileStreaming === 'function') {
    return WebAssembly.compileStreaming(response);
  }
  const bytes = new Uint8Array(await response.arrayBuffer());
  if (!hasWasmMagic(bytes)) {
    throw new Error(`${url} is not a WebAssembly module (served as ${type || 'no content type'}, ${bytes.length} bytes)`);
  }
  return WebAssembly.compile(bytes);
}
