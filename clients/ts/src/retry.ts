// Waiting between attempts: exponential backoff with jitter, the server's
// Retry-After, and sleeps that an AbortSignal ends at once.
import { ApiError, isRetryable } from "./errors.js";

/** How a client retries what may succeed later. */
export interface RetryOptions {
  /** First backoff, doubled each failure in a row (default 500 ms). */
  initialDelayMs?: number;
  /** Most backoff between two attempts (default 15 s). */
  maxDelayMs?: number;
  /** Failures in a row before giving up with the last error (default 8). */
  maxRetries?: number;
  /**
   * The longest Retry-After the client takes (default 60 s, as the Go
   * client's MaxRetryAfter), before the up to half again every wait the
   * server asks for gets (retryDelay). A server that asks for longer is
   * waited this long, so that a hostile figure cannot park the client for good; the
   * error thrown once the retries are spent carries what it asked
   * (retryAfterMs). The frontend asks for 30 s at most (a drained shard).
   */
  maxRetryAfterMs?: number;
  /** Told before each wait: what failed and how long the wait is. */
  onRetry?: (info: RetryInfo) => void;
}

/** One retry about to be waited for. */
export interface RetryInfo {
  /** Failures in a row so far, 1 for the first. */
  attempt: number;
  delayMs: number;
  error: unknown;
}

export type Retry = Required<Omit<RetryOptions, "onRetry">> & Pick<RetryOptions, "onRetry">;

export function retryDefaults(o: RetryOptions = {}): Retry {
  return {
    initialDelayMs: o.initialDelayMs ?? 500,
    maxDelayMs: o.maxDelayMs ?? 15_000,
    maxRetries: o.maxRetries ?? 8,
    maxRetryAfterMs: o.maxRetryAfterMs ?? 60_000,
    onRetry: o.onRetry,
  };
}

/**
 * The wait before retry number attempt (1-based): half of it fixed, half
 * at random, so that clients cut off together do not come back together.
 */
export function backoff(r: Retry, attempt: number, random: () => number = Math.random): number {
  const full = Math.min(r.maxDelayMs, r.initialDelayMs * 2 ** Math.min(attempt - 1, 30));
  return Math.round(full / 2 + (random() * full) / 2);
}

/**
 * Milliseconds a Retry-After header asks for (delay-seconds or an
 * HTTP-date); undefined when absent or unreadable.
 */
export function parseRetryAfter(h: string | null | undefined, now: number = Date.now()): number | undefined {
  if (h == null) return undefined;
  const s = h.trim();
  if (/^\d{1,9}$/.test(s)) return Number(s) * 1000;
  const at = Date.parse(s);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/** The error an aborted signal stands for. */
export function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException("This operation was aborted", "AbortError");
}

/** Waits ms, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortReason(signal));
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortReason(signal!));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * A controller that aborts when parent does (AbortSignal.any is newer
 * than some browsers this supports); release drops the link.
 */
export function linked(parent?: AbortSignal): { ctrl: AbortController; release: () => void } {
  const ctrl = new AbortController();
  if (!parent) return { ctrl, release: () => {} };
  if (parent.aborted) {
    ctrl.abort(abortReason(parent));
    return { ctrl, release: () => {} };
  }
  const onAbort = () => ctrl.abort(abortReason(parent));
  parent.addEventListener("abort", onAbort, { once: true });
  return { ctrl, release: () => parent.removeEventListener("abort", onAbort) };
}

/**
 * The wait before retrying after the failures-th failure in a row with
 * err, or undefined to give up: err is not one that may pass, or the
 * retries are spent. It is the backoff, or when the server asked for
 * longer (its Retry-After, up to maxRetryAfterMs, or its event stream's
 * `retry:`, serverMs, up to maxDelayMs) that, and up to half of it again
 * at random: every client of a frontend that restarts is told the same
 * Retry-After, and waiting it exactly brought them all back in one
 * moment.
 */
export function retryDelay(r: Retry, failures: number, err: unknown, serverMs?: number, random: () => number = Math.random): number | undefined {
  if (!isRetryable(err) || failures > r.maxRetries) return undefined;
  const after = err instanceof ApiError ? Math.min(err.retryAfterMs ?? 0, r.maxRetryAfterMs) : 0;
  const asked = Math.max(after, Math.min(serverMs ?? 0, r.maxDelayMs));
  const b = backoff(r, failures, random);
  return b >= asked ? b : Math.round(asked + (random() * asked) / 2);
}

/** Runs fn until it succeeds, retrying what may pass (retryDelay), until signal aborts. */
export async function withRetry<T>(r: Retry, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
  for (let failures = 1; ; failures++) {
    try {
      return await fn();
    } catch (err) {
      if (signal?.aborted) throw abortReason(signal);
      const delayMs = retryDelay(r, failures, err);
      if (delayMs === undefined) throw err;
      r.onRetry?.({ attempt: failures, delayMs, error: err });
      await sleep(delayMs, signal);
    }
  }
}
