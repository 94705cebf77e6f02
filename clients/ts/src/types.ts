// The API's bodies, named from the types generated from the frontend's
// openapi.yaml (schema.ts): the server's contract is the one source.
import { eventIds } from "./contract.js";
import type { components } from "./schema.js";

/** A ticket as the frontend answers it (GET, POST's 202, every event). */
export type Ticket = components["schemas"]["Ticket"];
/** What POST /v1/tickets takes. */
export type TicketRequest = components["schemas"]["TicketRequest"];
/** Where to play, in an assigned ticket. */
export type Assignment = components["schemas"]["Assignment"];
/** A ticket's attributes beyond skill and region (the rule set's). */
export type Attributes = components["schemas"]["Attributes"];
/** Every error answer of the frontend. */
export type ErrorBody = components["schemas"]["Error"];
/** Where a ticket stands. */
export type Status = Ticket["status"];

const statuses: readonly Status[] = ["queued", "matched", "assigned", "cancelled", "expired", "failed"];

/** A status after which nothing changes (assigned is one: it says where to play). */
export function isTerminal(s: Status): boolean {
  return s !== "queued" && s !== "matched";
}

/** The event id the frontend's event stream gives a status (1, 2, 3). */
export function rank(s: Status): number {
  return s === "queued" ? eventIds.queued : s === "matched" ? eventIds.matched : eventIds.terminal;
}

/**
 * The ticket in data, checked as far as this client relies on it: an
 * object with a string ticket_id (the one asked about, if given), a
 * known status, and when assigned an http or https assignment url (a
 * page that goes there must never be sent to javascript: or data:).
 * undefined for anything else.
 */
export function toTicket(data: unknown, id?: string): Ticket | undefined {
  if (typeof data !== "object" || data === null || Array.isArray(data)) return undefined;
  const t = data as Record<string, unknown>;
  if (typeof t.ticket_id !== "string" || (id !== undefined && t.ticket_id !== id)) return undefined;
  if (!statuses.includes(t.status as Status)) return undefined;
  if (t.status === "assigned") {
    const a = t.assignment as Record<string, unknown> | undefined;
    if (typeof a !== "object" || a === null || !isWebURL(a.url)) return undefined;
  }
  return data as Ticket;
}

/**
 * Whether u is an absolute http or https URL, written with "//", with a
 * host name: the assignment URL rule, declared once in Go (pkg/ticketapi,
 * ValidAssignmentURL), which this follows on the same cases
 * (pkg/ticketapi/testdata/assignment_urls.json).
 */
function isWebURL(u: unknown): boolean {
  // The WHATWG parser takes more than Go's url.Parse (a missing "//",
  // backslashes, spaces, control characters, percent-escapes in the host
  // or broken ones anywhere, braces and backticks in the host), so the
  // text's shape is checked first, as the Go rule reads it; where the two
  // still differ, this one refuses more.
  if (typeof u !== "string" || !/^https?:\/\/[^/\\?#]/i.test(u)) return false;
  if (/[\s\u0000-\u001f\u007f]/.test(u) || /%(?![0-9a-f]{2})/i.test(u)) return false;
  const authority = u.slice(u.indexOf("//") + 2).split(/[/?#]/, 1)[0] ?? "";
  if (/[%{}`\\]/.test(authority)) return false;
  try {
    return new URL(u).hostname !== "";
  } catch {
    return false;
  }
}
