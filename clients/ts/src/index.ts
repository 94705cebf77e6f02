// quickmatch's ticket API for browsers and Node. See README.md
// ("TypeScript client") for an example.
export { Client, type ClientOptions, type CallOptions, type CreateOptions, type FollowOptions } from "./client.js";
export { ApiError, ConnectionError, ProtocolError } from "./errors.js";
export type { TokenProvider } from "./http.js";
export type { RetryInfo, RetryOptions } from "./retry.js";
export type { QueuedTicket, WebSocketConstructor, WebSocketLike, WebSocketRequest } from "./ws.js";
export { isTerminal, type Assignment, type Attributes, type ErrorBody, type Status, type Ticket, type TicketRequest } from "./types.js";
export type { components, paths } from "./schema.js";
// The wire contract (paths, headers, close codes), for callers that
// speak part of the API themselves and for the frontend's test that
// holds it equal to pkg/ticketapi's.
export * as contract from "./contract.js";
