// Package agones holds what quickmatch needs of Agones without its Go
// module (which cannot be fetched here): a client of the SDK sidecar's
// HTTP gateway (package sdk), a fake of that gateway built from its API
// description for tests (sdk/sdktest), and the metadata contract between
// the allocator and the game server (room.go).
package agones
