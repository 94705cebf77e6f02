package events

import "time"

// Capacity is what an allocator knows about the game-server capacity of one
// region. Allocators put it in the capacity bucket (key: region) every few
// seconds; frontends watch the bucket and stop queueing tickets for a
// region that has no room left.
type Capacity struct {
	SchemaVersion int    `json:"schema_version"`
	Region        string `json:"region"`
	// FreeRooms is how many more matches the region can host now.
	FreeRooms int `json:"free_rooms"`
	// TotalRooms is the region's room count when every server is up.
	TotalRooms int `json:"total_rooms"`
	// Servers is how many game servers answered; ReadyServers of them host
	// nothing yet, AllocatedServers host at least one match.
	Servers          int       `json:"servers"`
	ReadyServers     int       `json:"ready_servers"`
	AllocatedServers int       `json:"allocated_servers"`
	At               time.Time `json:"at"`
}
