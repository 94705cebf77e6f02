// The plain HTTP side: URLs, the identity token, bounded JSON bodies and
// error answers.
import { headers } from "./contract.js";
import { ApiError, ProtocolError } from "./errors.js";
import { parseRetryAfter } from "./retry.js";
import type { ErrorBody } from "./types.js";

/**
 * Gives the player's (or the game backend's) identity token, called
 * before every request and every reconnection, so a token refreshed
 * meanwhile is the one sent; nothing (undefined, null, "") sends none.
 * After a 401 it is called once more with the token refused (as the Go
 * client's TokenSource is): a provider that caches tokens hands out a
 * fresh one, and the request is sent again once with it; the same one
 * again gives the 401 up. A WebSocket (queue) cannot see its 401 (the
 * platform says only that it closed): a handshake that fails, for
 * whatever reason, asks the provider once more with the token it sent
 * before the next try, once per token.
 */
export type TokenProvider = (refused?: string) => string | null | undefined | Promise<string | null | undefined>;

/**
 * The provider's token, if any (refused: the one a 401 refused). A
 * provider that never answers does not hold the call: signal still ends
 * it.
 */
export async function tokenOf(token: TokenProvider | undefined, signal: AbortSignal | undefined, refused?: string): Promise<string | undefined> {
  if (!token) return undefined;
  signal?.throwIfAborted();
  if (!signal) return (await token(refused)) || undefined;
  let onAbort = () => {};
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    return (await Promise.race([token(refused), aborted])) || undefined;
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

/** The Authorization header of token t, if any. */
export function bearer(t: string | undefined): Record<string, string> {
  return t ? { [headers.authorization]: `Bearer ${t}` } : {};
}

/**
 * send's response, sent with the provider's token; a 401 asks the
 * provider once more, naming the token refused, and sends again once
 * with a fresh one (a token that expired while its player waited, or a
 * clock behind the provider's). The same token again keeps the 401.
 */
export async function sendAuthed(
  token: TokenProvider | undefined,
  signal: AbortSignal | undefined,
  send: (auth: Record<string, string>) => Promise<Response>,
): Promise<Response> {
  const t = await tokenOf(token, signal);
  const res = await send(bearer(t));
  if (res.status !== 401 || !t) return res;
  const fresh = await tokenOf(token, signal, t);
  if (!fresh || fresh === t) return res;
  res.body?.cancel().catch(() => {});
  return send(bearer(fresh));
}

/** Resolves path against the client's base URL (the page's origin in a browser). */
export function resolve(base: string | undefined, path: string): URL {
  const origin = base ?? (globalThis as { location?: { href: string } }).location?.href;
  if (!origin) throw new TypeError("quickmatch: give baseUrl (there is no page to take it from)");
  return new URL(path, origin);
}

/** The body of res as text, refused past max characters (a hostile or broken server). */
export async function readText(res: Response, max: number): Promise<string> {
  if (!res.body) return "";
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return text + decoder.decode();
      text += decoder.decode(value, { stream: true });
      if (text.length > max) throw new ProtocolError(`response body over ${max} characters`);
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

/** JSON of res, bounded; undefined when it is not JSON. */
export async function readJSON(res: Response, max: number): Promise<unknown> {
  const text = await readText(res, max);
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The ApiError for an error answer, its body read if it is one. */
export async function apiError(res: Response, max: number, ticket?: (body: unknown) => ApiError["ticket"]): Promise<ApiError> {
  let body: unknown;
  try {
    body = await readJSON(res, max);
  } catch {
    body = undefined; // an oversized error body: the status says enough
  }
  const eb = typeof body === "object" && body !== null && typeof (body as ErrorBody).error === "string" ? (body as ErrorBody) : undefined;
  return new ApiError(res.status, eb, parseRetryAfter(res.headers.get(headers.retryAfter)), ticket?.(body));
}

/**
 * A random Idempotency-Key: getRandomValues (outside secure contexts
 * too), or Math.random where there is no Web Crypto (Node 18).
 */
export function newKey(): string {
  const b = new Uint8Array(16);
  if (globalThis.crypto?.getRandomValues) globalThis.crypto.getRandomValues(b);
  else for (let i = 0; i < b.length; i++) b[i] = Math.floor(Math.random() * 256);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}
