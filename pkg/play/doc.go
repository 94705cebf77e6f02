// Package play is what a game server and its clients agree on: the URL a
// player is sent to (the allocator builds it when it assigns a match, the
// browser page and the load tool open it), the WebSocket that joins a room
// with the same query, and the /status body that tells the allocator's
// local backend how many rooms a server has free.
//
// A room is where one match is played; it is named by its match id. The
// query parameter that carries it is called "room" on the wire, and stays
// so: assignments already handed out and the play page read that name.
//
// The game server (services/game) serves these paths; nothing here talks
// to the network.
package play
