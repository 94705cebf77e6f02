// A Server-Sent Events parser (the WHATWG event stream format) with a
// bound on what it holds: a server that sends a line or an event larger
// than maxLength, or never ends one, costs this client at most that much
// memory and gets its connection dropped (ProtocolError).
import { ProtocolError } from "./errors.js";

/** One event of the stream. */
export interface SSEEvent {
  /** The event's type: its `event:` field, "message" without one. */
  type: string;
  data: string;
  /** The last event id of the stream so far (the `id:` field persists). */
  lastEventId: string;
}

export class SSEParser {
  private line = "";
  private data: string[] = [];
  private dataLength = 0;
  private type = "";
  /** The stream's last event id, as a reconnection sends it back. */
  lastEventId = "";
  /** The reconnection time the server asked for (`retry:`), in ms. */
  retryMs: number | undefined;
  // A chunk that ended in CR: a LF starting the next one is its pair.
  private afterCR = false;

  constructor(private readonly maxLength: number) {}

  /** Feeds decoded text; returns the events it completed. */
  push(chunk: string): SSEEvent[] {
    const out: SSEEvent[] = [];
    let i = 0;
    if (this.afterCR && chunk.startsWith("\n")) i = 1;
    this.afterCR = false;
    while (i < chunk.length) {
      const cr = chunk.indexOf("\r", i);
      const lf = chunk.indexOf("\n", i);
      let end = cr < 0 ? lf : lf < 0 ? cr : Math.min(cr, lf);
      if (end < 0) {
        this.append(chunk.slice(i));
        break;
      }
      this.append(chunk.slice(i, end));
      const ev = this.endLine();
      if (ev) out.push(ev);
      if (chunk[end] === "\r") {
        if (end + 1 === chunk.length) this.afterCR = true;
        else if (chunk[end + 1] === "\n") end++;
      }
      i = end + 1;
    }
    return out;
  }

  private append(s: string): void {
    if (this.line.length + s.length + this.dataLength > this.maxLength) {
      throw new ProtocolError(`event stream: an event over ${this.maxLength} characters`);
    }
    this.line += s;
  }

  private endLine(): SSEEvent | undefined {
    const line = this.line;
    this.line = "";
    if (line === "") return this.dispatch();
    if (line.startsWith(":")) return undefined; // a comment (": ping")
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    switch (field) {
      case "data":
        this.data.push(value);
        this.dataLength += value.length + 1;
        break;
      case "event":
        this.type = value;
        break;
      case "id":
        if (!value.includes("\0")) this.lastEventId = value;
        break;
      case "retry":
        if (/^\d{1,9}$/.test(value)) this.retryMs = Number(value);
        break;
    }
    return undefined;
  }

  private dispatch(): SSEEvent | undefined {
    const data = this.data;
    const type = this.type || "message";
    this.data = [];
    this.dataLength = 0;
    this.type = "";
    if (data.length === 0) return undefined;
    return { type, data: data.join("\n"), lastEventId: this.lastEventId };
  }
}

/**
 * The events of an event stream's body, read until it ends. Every chunk
 * read (a comment too) calls alive, which the caller's idle timer uses.
 */
export async function* readEvents(
  body: ReadableStream<Uint8Array>,
  parser: SSEParser,
  alive: () => void,
): AsyncGenerator<SSEEvent> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      alive();
      yield* parser.push(decoder.decode(value, { stream: true }));
    }
  } finally {
    // Ends the connection whether the stream ended, failed or was left.
    reader.cancel().catch(() => {});
  }
}
