// Code generated from services/frontend/internal/api/openapi.yaml by `npm run generate`; DO NOT EDIT.
export interface paths {
    "/v1/tickets": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Queue a ticket for a player or a party */
        post: {
            parameters: {
                query?: never;
                header?: {
                    /** @description A repeated request with the same key from the same caller returns the same ticket (and never queues a second one). Reusing a key for a different request is a 409. Keys are scoped to the caller (the token's player, or server credential), so another caller's key reveals nothing. */
                    "Idempotency-Key"?: string;
                    /** @description "1" on a request sent again with its Idempotency-Key after an attempt that may have made the ticket (no answer, or a refusal other than an overload, a frontend starting, a rate limit or a full region). A frontend past its limit refuses creations before it reads their key, but answers such a repeat (with a token) from the ticket an earlier attempt made, in a few slots of its own, and refuses it for overload if none did (or says its shard is drained or its region full). Without a key it is ignored. */
                    "Quickmatch-Repeat"?: "1";
                    "X-Correlation-Id"?: string;
                    /** @description W3C trace context. The ticket's spans (create, and through the bus the matcher's wait, the match's commit, the allocation and the join) belong to this trace when tracing is on; the header travels with the ticket either way. */
                    Traceparent?: string;
                };
                path?: never;
                cookie?: never;
            };
            requestBody: {
                content: {
                    /**
                     * @example {
                     *       "player_id": "alice",
                     *       "mode": "1v1",
                     *       "skill": 1650,
                     *       "region": "eu"
                     *     }
                     */
                    "application/json": components["schemas"]["TicketRequest"];
                };
            };
            responses: {
                /** @description Queued */
                202: {
                    headers: {
                        /** @description /v1/tickets/{ticket_id} */
                        Location?: string;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Ticket"];
                    };
                };
                400: components["responses"]["Invalid"];
                401: components["responses"]["Unauthorized"];
                403: components["responses"]["Forbidden"];
                /** @description The request body was not received within the body timeout (default 10 s) */
                408: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                409: components["responses"]["Error"];
                413: components["responses"]["Error"];
                429: components["responses"]["RateLimited"];
                503: components["responses"]["NotQueued"];
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/tickets/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        /** Where a ticket stands */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description The ticket */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Ticket"];
                    };
                };
                401: components["responses"]["Unauthorized"];
                404: components["responses"]["NotFound"];
                503: components["responses"]["Unavailable"];
            };
        };
        put?: never;
        post?: never;
        /** Cancel a ticket; a cancelled ticket is never matched */
        delete: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Cancelled (also when it was cancelled before) */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Ticket"];
                    };
                };
                401: components["responses"]["Unauthorized"];
                404: components["responses"]["NotFound"];
                /** @description Too late, the ticket has another outcome (matched, assigned, expired, failed); the body is the ticket as the caller sees it (its own assignment, for a player of a party) */
                409: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Ticket"];
                    };
                };
                429: components["responses"]["RateLimited"];
                503: components["responses"]["Unavailable"];
            };
        };
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/tickets/{id}/events": {
        parameters: {
            query?: {
                /** @description The bearer token, for clients that cannot set the Authorization header (EventSource, WebSocket in browsers). */
                access_token?: components["parameters"]["AccessToken"];
            };
            header?: {
                /** @description Resume after this event id; only newer statuses are sent (with 1, queued is not sent again, only later refreshes of its expected wait). */
                "Last-Event-ID"?: 1 | 2 | 3;
            };
            path: {
                id: string;
            };
            cookie?: never;
        };
        /**
         * Server-Sent Events with every status change
         * @description Each event is `id: <1 queued | 2 matched | 3 terminal>`, `event: status`,
         *     `data: <Ticket JSON>`. The stream ends after the terminal status.
         *     While the ticket is queued, the queued event comes again, with the same
         *     id 1, when its `expected_wait_ms` becomes known or moves by more than a
         *     quarter: looked at every `-wait-refresh` (10 s), so at most one such
         *     event per period. Comment lines (`: ping`) keep idle connections open.
         */
        get: {
            parameters: {
                query?: {
                    /** @description The bearer token, for clients that cannot set the Authorization header (EventSource, WebSocket in browsers). */
                    access_token?: components["parameters"]["AccessToken"];
                };
                header?: {
                    /** @description Resume after this event id; only newer statuses are sent (with 1, queued is not sent again, only later refreshes of its expected wait). */
                    "Last-Event-ID"?: 1 | 2 | 3;
                };
                path: {
                    id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description An event stream */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "text/event-stream": string;
                    };
                };
                401: components["responses"]["Unauthorized"];
                404: components["responses"]["NotFound"];
                429: components["responses"]["TooManyStreams"];
                503: components["responses"]["Starting"];
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/ws": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * WebSocket compatible with the original demo's clients
         * @description Connecting queues a ticket. The server sends exactly one text message,
         *     the game server URL of the assignment, then closes normally. Otherwise
         *     it closes with 4001 expired, 4002 failed, 4003 cancelled, 4400 invalid
         *     request or 1013 try again later, with a reason. A client that
         *     disconnects before its assignment has its ticket cancelled, as does a
         *     frontend that shuts down (1001; a ticket a match took meanwhile is
         *     sent its end instead). When the
         *     frontend is overloaded the handshake itself is refused: 503 with
         *     Retry-After, before the upgrade. A ticket refused after the upgrade
         *     (its shard drained by an operator, its region out of capacity, the
         *     ticket service unavailable) closes 1013, its reason starting with
         *     what a POST's Retry-After says, `retry after <seconds>s: `, e.g.
         *     `retry after 30s: shard eu.gold is drained: <the operator's reason>`.
         *     A reason is cut to 123 bytes, at a character's boundary.
         */
        get: {
            parameters: {
                query?: {
                    region?: string;
                    mode?: string;
                    skill?: number;
                    /** @description a player token's own id (the default; another id is a 403); with a server token, any player (default: a random id) */
                    player_id?: string;
                    /** @description the ticket's attributes, the JSON object a POST carries (URL-encoded); malformed is a 400 before the upgrade, refused by the rule set closes 4400 */
                    attributes?: string;
                    /** @description The bearer token, for clients that cannot set the Authorization header (EventSource, WebSocket in browsers). */
                    access_token?: components["parameters"]["AccessToken"];
                };
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Switching to WebSocket */
                101: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content?: never;
                };
                400: components["responses"]["Invalid"];
                401: components["responses"]["Unauthorized"];
                403: components["responses"]["Forbidden"];
                429: components["responses"]["TooManyStreams"];
                503: components["responses"]["Overloaded"];
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/ws/events": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * WebSocket streaming every status change as Ticket JSON
         * @description Same query parameters and closes as /ws, access_token included. The client may
         *     send {"type":"cancel"}. While the ticket is queued, a queued message
         *     comes again when its `expected_wait_ms` moves, as on the event stream;
         *     and the last message comes again after a heartbeat (15 s) without one,
         *     so that a page, which hears no ping, can tell a dead connection. Only
         *     a client that closes the connection leaves (its ticket cancelled),
         *     unless it closes with 4000 (it follows the ticket elsewhere); one whose
         *     connection is cut keeps its ticket, as does one let go by a frontend
         *     that shuts down (1012, "frontend restarting; ticket kept: follow
         *     /v1/tickets/{id}/events") or that lost track of it (1013, "lost track
         *     of the ticket; poll GET /v1/tickets/{id}"): follow it on its event
         *     stream, on any frontend, and DELETE it to leave. A ticket whose
         *     connection was cut, or closed with 4000 or 1012, that no one follows
         *     on an event stream 60-90 s later (the frontend's -lost-grace), or
         *     later on, is cancelled, its reason starting "client lost: ": the
         *     player went away.
         */
        get: {
            parameters: {
                query?: {
                    /** @description The bearer token, for clients that cannot set the Authorization header (EventSource, WebSocket in browsers). */
                    access_token?: components["parameters"]["AccessToken"];
                };
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Switching to WebSocket */
                101: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content?: never;
                };
                400: components["responses"]["Invalid"];
                401: components["responses"]["Unauthorized"];
                403: components["responses"]["Forbidden"];
                429: components["responses"]["TooManyStreams"];
                503: components["responses"]["Overloaded"];
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/dev/token": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Development issuer: a player token (only with -auth-dev-issuer-key, only from loopback)
         * @description Present only when the frontend runs with its development issuer
         *     (`make run`); it refuses requests that do not come from a loopback
         *     address (403), and the frontend refuses to start with it unless it
         *     listens on a loopback address. Never on in a deployment.
         */
        post: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: {
                content: {
                    "application/json": {
                        /** @description default: a random dev-<hex> */
                        player_id?: string;
                    };
                };
            };
            responses: {
                /** @description A token for the player */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            token: string;
                            player_id: string;
                        };
                    };
                };
                /** @description Not from a loopback address */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content?: never;
                };
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/healthz": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Liveness */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description alive */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content?: never;
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/readyz": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Readiness (fails first on shutdown) */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description ready */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content?: never;
                };
                /** @description not ready */
                503: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content?: never;
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/metrics": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Prometheus metrics (served on -ops-addr instead when it is set) */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description metrics */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content?: never;
                };
                /** @description served on the ops address */
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content?: never;
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
}
export type webhooks = Record<string, never>;
export interface components {
    schemas: {
        TicketRequest: {
            /** @description Server tokens only (a player token choosing one is a 400): an id names a ticket for every caller, so a player who learnt another's id could otherwise replay or probe it; players make requests idempotent with Idempotency-Key, which is scoped to them. Makes the request idempotent. */
            ticket_id?: string;
            /** @description With a player token: the token's player (the default when neither player_id nor party is given); another id is a 403 */
            player_id?: string;
            /** @description Server tokens only for a party of several players (the game's party service): a player token may name only itself (403 otherwise) */
            party?: string[];
            /**
             * @description A mode of the rule set in force (the matchers' rule set file, -rules; the find-a-match page offers its modes). A party may be at most the mode's team size.
             * @default 1v1
             */
            mode: string;
            /** @description Required, unless the frontend takes a player's skill and attributes from its token (-auth-ticket-claim): then a player token may leave both out or repeat the token's, and anything else is a 403 */
            skill: number;
            /**
             * @example eu
             * @example us
             * @example asia
             */
            region: string;
            /** @description Round trip per region; each key must be a region this deployment serves */
            latencies_ms?: {
                [key: string]: number;
            };
            attributes?: components["schemas"]["Attributes"];
        };
        /**
         * @description What the game says about the ticket beyond skill and region. The
         *     shape and bounds are the contract's; which names are allowed, of
         *     which kind, with which values or range, and which are required is
         *     the rule set's. A name the rule set does not declare, a name of
         *     another kind, a value it does not allow, a number out of its range
         *     and a required attribute left out are each a 400 naming the field:
         *     `attributes.strings.<name>`, `attributes.sets.<name>` (a member by
         *     its index, `attributes.sets.<name>[1]`), `attributes.numbers.<name>`,
         *     a tag by its index, `attributes.tags[2]`; the contract's own bounds
         *     name fields the same way. The matchers refuse the same tickets for
         *     the same reasons.
         * @example {
         *       "strings": {
         *         "platform": "pc"
         *       },
         *       "sets": {
         *         "maps": [
         *           "dust",
         *           "nuke"
         *         ]
         *       },
         *       "numbers": {
         *         "level": 30
         *       },
         *       "tags": [
         *         "newbie"
         *       ]
         *     }
         */
        Attributes: {
            /** @description Single values, compared for equality (platform, build) */
            strings?: {
                [key: string]: string;
            };
            /** @description Several values, compared by overlap (preferred maps) */
            sets?: {
                [key: string]: string[];
            };
            /** @description Compared by distance (level, hours played) */
            numbers?: {
                [key: string]: number;
            };
            /** @description Present or absent (newbie, voice) */
            tags?: string[];
        };
        Ticket: {
            ticket_id: string;
            /** @enum {string} */
            status: "queued" | "matched" | "assigned" | "cancelled" | "expired" | "failed";
            region?: string;
            /**
             * @example bronze
             * @example silver
             * @example gold
             * @example platinum
             */
            tier?: string;
            mode?: string;
            match_id?: string;
            reason?: string;
            assignment?: components["schemas"]["Assignment"];
            /**
             * @description While the ticket is queued: how long a ticket of its shard (region
             *     and tier) and mode can expect to wait, from its creation to its
             *     match, in milliseconds. The shard's matcher estimates it every
             *     couple of seconds from the tickets it matched in the last minute
             *     (their median wait) or, when it matched none, from how long its
             *     oldest waiting ticket has waited so far (a lower bound). Left out
             *     when unknown, and once the ticket is no longer queued. A figure of
             *     the moment: a GET gives the newest; the queued event of the event
             *     stream and of /ws/events carries the one of when it was sent, and
             *     is sent again when the figure becomes known or moves by more than
             *     a quarter (at most once per -wait-refresh, 10 s).
             */
            expected_wait_ms?: number;
        };
        Assignment: {
            server: string;
            address: string;
            port: number;
            /** @description The game page; it answers 200 to a GET */
            url: string;
            room: string;
            join_token: string;
            match_id: string;
        };
        Error: {
            error: string;
            fields?: {
                field?: string;
                reason?: string;
            }[];
            /** @description A region with free rooms */
            suggest_region?: string;
            /** @description The ticket's shard is drained by an operator */
            drained?: {
                /** @description The shard (region.tier) */
                shard: string;
                /** @description The operator's reason */
                reason: string;
            };
        };
    };
    responses: {
        /** @description An error */
        Error: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["Error"];
            };
        };
        /** @description The request is invalid, or breaks the rule set (an unknown mode, a party larger than the mode's team, latencies for a region not served, attributes it does not allow); fields names each offending field */
        Invalid: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["Error"];
            };
        };
        /** @description No token, or an invalid one (WWW-Authenticate says which) */
        Unauthorized: {
            headers: {
                /** @description Bearer realm="quickmatch", with error="invalid_token" for a token that was refused */
                "WWW-Authenticate"?: string;
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["Error"];
            };
        };
        /** @description A player token asked for a ticket of another player, or of a party of several players, or with a skill or attributes its token's ticket claim does not say (-auth-ticket-claim) */
        Forbidden: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["Error"];
            };
        };
        /** @description No such ticket, or one the caller is not a player of (the two answers are identical) */
        NotFound: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["Error"];
            };
        };
        /** @description Too many requests, or this client (the player, else the address) already holds the most open event streams and WebSockets allowed (-max-streams-per-client, default 8) */
        TooManyStreams: {
            headers: {
                "Retry-After"?: number;
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["Error"];
            };
        };
        /** @description Too many requests from this client (the player when authenticated, else the address; a server credential is not limited), or too many ticket creations from this player (-create-rate-limit, 1 a second with bursts of 5) */
        RateLimited: {
            headers: {
                "Retry-After"?: number;
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["Error"];
            };
        };
        /** @description The ticket service is unavailable (the broker), or the frontend is still starting (see Starting); retry after Retry-After */
        Unavailable: {
            headers: {
                "Retry-After"?: number;
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["Error"];
            };
        };
        /** @description The frontend is still starting (connecting to NATS, binding); nothing was done; retry after Retry-After. Any path but the probes may answer it. */
        Starting: {
            headers: {
                "Retry-After"?: 1;
                [name: string]: unknown;
            };
            content: {
                /**
                 * @example {
                 *       "error": "starting: not ready yet, retry later"
                 *     }
                 */
                "application/json": components["schemas"]["Error"];
            };
        };
        /**
         * @description Overloaded: the frontend has as many tickets being created as it lets
         *     run at once, a number it moves with how long creations take (overload
         *     control, -overload-target); nothing was queued. Refused before the
         *     token is verified or the body decoded (at once when the limit is
         *     full as the request comes; else once its body is in), so that past
         *     capacity the tickets taken keep their latency and the rest hear at
         *     once. `error`
         *     starts with "overloaded"; Retry-After is a second for each creation
         *     refused per one admitted in the last second (1 while refusals do
         *     not outnumber admissions, 5 at most, at most doubling from one
         *     second to the next), and up to twice as much again, at random so
         *     that refused clients do not all come back together: clients that
         *     ask again come back no faster than the frontend can take them.
         *     A keyed POST with a token sent with Quickmatch-Repeat is read,
         *     verified and answered from the ticket an earlier attempt made, if
         *     one did (a few at a time; with Retry-After 1 to 3 s when those are
         *     taken).
         *     Reads, event streams and cancels are never refused for overload.
         */
        Overloaded: {
            headers: {
                "Retry-After"?: number;
                [name: string]: unknown;
            };
            content: {
                /**
                 * @example {
                 *       "error": "overloaded: too many tickets are being created, retry later"
                 *     }
                 */
                "application/json": components["schemas"]["Error"];
            };
        };
        /**
         * @description Nothing was queued; retry after Retry-After. The region is out of
         *     game-server capacity (suggest_region names one with free rooms), the
         *     ticket's shard is drained by an operator (drained names it and the
         *     operator's reason; Retry-After 30), the frontend is overloaded
         *     (`error` starts with "overloaded"; see the Overloaded response), or
         *     the ticket service is unavailable (retry with the same
         *     Idempotency-Key; Retry-After 1), or the frontend is still starting
         *     (see the Starting response; Retry-After 1).
         */
        NotQueued: {
            headers: {
                "Retry-After"?: number;
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["Error"];
            };
        };
    };
    parameters: {
        /** @description The bearer token, for clients that cannot set the Authorization header (EventSource, WebSocket in browsers). */
        AccessToken: string;
    };
    requestBodies: never;
    headers: never;
    pathItems: never;
}
export type $defs = Record<string, never>;
export type operations = Record<string, never>;
