// Package agones holds what quickmatch needs of Agones without its Go
// module (which cannot be fetched here): a client of the SDK sidecar's
// HTTP gateway (package sdk), a fake of that gateway built from its API
// description for tests (sdk/sdktest), and the metadata contract between
// the allocator and the game server.
package agones

// Annotations and names the allocator and the game server agree on.
const (
	// CounterRooms counts the rooms (matches) a game server hosts; its
	// capacity is how many it may host at once (high density).
	CounterRooms = "rooms"
	// ListPlayers lists the players a game server was allocated for.
	ListPlayers = "players"
	// MatchAnnotationPrefix + match id is set on the GameServer by the
	// allocation; its value is the match's player ids, comma-separated.
	// The game server opens the room and admits exactly those players.
	MatchAnnotationPrefix = "quickmatch.dev/match-"
)
